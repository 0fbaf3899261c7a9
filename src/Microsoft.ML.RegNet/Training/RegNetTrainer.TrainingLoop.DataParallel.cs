using System.Text.Json;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Modules;
using Microsoft.ML.Runtime;
using Microsoft.ML.RegNet.Training;
using TorchSharp.Modules;

namespace Microsoft.ML.RegNet;

public sealed partial class RegNetTrainer
{
    // Data-parallel training (docs/data_parallel.md): what the loop does differently when it runs on several MPI ranks.
    private sealed partial class TrainingLoop
    {
        private static readonly JsonSerializerOptions StateJson = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

        // The parameters whose gradients are averaged: the trainable ones, again after the second phase unfreezes the trunk.
        private List<Parameter> _trainable = new();

        // Rank 0 logs, writes the run folder and checkpoints; without data parallelism this process is rank 0.
        private bool IsRoot => _parallel?.IsRoot ?? true;

        private RowShard? Shard(bool pad) => _parallel is { } p ? new RowShard(p.Rank, p.Size, pad) : null;

        // Rank 0's weights, buffers, optimizer state, padding and position in training (new or resumed) on every rank.
        private TrainingState SynchronizeStart(TrainingState state, OptimizerHelper optimizer)
        {
            var parallel = _parallel!;
            string start = parallel.Broadcast(IsRoot ? JsonSerializer.Serialize(new StartMessage(state, _model.Padding.ToString()), StateJson) : null);
            var message = JsonSerializer.Deserialize<StartMessage>(start, StateJson)!;
            _model.Padding = Enum.Parse<PaddingStyle>(message.Padding);
            parallel.BroadcastState(_model);
            parallel.BroadcastOptimizerState(optimizer);
            if (IsRoot)
                _channel.Info(MessageSensitivity.None, $"Data-parallel training over {parallel.Size} ranks ({parallel.World.Description}): " +
                    $"{_stepsPerEpoch} steps per epoch of {_o.BatchSize} images per rank; rank 0's weights and optimizer state broadcast.");
            return message.State;
        }

        // Whether training stops before the next step. Data-parallel, every rank's token is summed over the ranks, so all stop
        // after the same step: mpirun forwards Ctrl-C to every rank, but each would see it at a different step and the
        // others would wait in the next allreduce for ever.
        private bool StopRequested()
        {
            bool mine = _o.CancellationToken.IsCancellationRequested;
            if (_parallel is not { } p) return mine;
            double[] votes = { mine ? 1 : 0 };
            p.Sum(votes);
            return votes[0] > 0;
        }

        // What the input pipelines stop on: data-parallel ranks stop only by agreement (StopRequested), never on their own.
        private CancellationToken ReadCancellation => _parallel is null ? _o.CancellationToken : CancellationToken.None;

        // Training metrics over all ranks (each rank saw its own rows).
        private void Globalize(MetricsAccumulator accumulator)
        {
            if (_parallel is { } p) accumulator.Reduce(p.Sum);
        }

        private sealed record StartMessage(TrainingState State, string Padding);
    }
}
