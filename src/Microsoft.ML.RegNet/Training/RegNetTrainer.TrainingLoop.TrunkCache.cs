using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.Runtime;
using static TorchSharp.torch;
using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet;

public sealed partial class RegNetTrainer
{
    // A frozen trunk costs nothing twice: its outputs of one epoch are kept and later epochs train the rest on them.
    private sealed partial class TrainingLoop
    {
        private FrozenTrunkCache? _trunkCache;
        private long _trainRows;

        // Stages frozen after the frozen stem; null when nothing is frozen.
        private int? TrunkStages => _o.FreezeStem || _o.FreezeStages > 0 ? Math.Min(_o.FreezeStages, _model.Stages.Count) : null;

        // Trunk outputs are reusable only when they are the same every epoch: deterministic preprocessing, no mixing (it
        // mixes images before the trunk), one process (data-parallel ranks read other rows each epoch).
        private bool CanCacheTrunk() => _o.CacheFrozenTrunk && TrunkStages is not null && _o.UnfreezeAfterEpochs is null or > 1 && !_o.Augmentation.Train
            && _o.Mixing.MixupAlpha == 0 && _o.Mixing.CutMixAlpha == 0 && _parallel is not { Size: > 1 };

        // A complete cache replays the epoch's batches in the input pipeline's order; otherwise the images are read and
        // the session hands each batch's trunk output to the cache.
        private IEnumerable<ImageBatch> EpochBatches(IDataView train, TrainingSession session, ImageBatchPipeline pipeline, int epoch, int skipBatches)
        {
            if (_trunkCache is { IsComplete: true } cache)
                return cache.Batches(pipeline.RowOrder(_trainRows, epoch), _o.BatchSize, skipBatches);
            session.TrunkComputed = _trunkCache is null ? null : _trunkCache.Add;
            return pipeline.Read(train, epoch, skipBatches, ReadCancellation);
        }

        // The second phase of fine-tuning (UnfreezeAfterEpochs): the frozen parts train from this epoch on, so the
        // trunk's outputs change every step and the cache has served its purpose.
        private void Unfreeze(TrainingSession session, int epoch)
        {
            foreach (var module in _frozen)
                foreach (var p in module.parameters()) p.requires_grad = true;
            _frozen = new List<nn.Module>();
            _model.FoldFrozenNormalization(null);
            session.Unfreeze();
            _trunkCache?.Dispose();
            _trunkCache = null;
            if (_parallel is not null) _trainable = _model.parameters().Where(p => p.requires_grad).ToList();
            _channel.Info(MessageSensitivity.None, $"Epoch {epoch}: the frozen stem{(_o.FreezeStages > 0 ? $" and stages 1–{_o.FreezeStages}" : "")} train from now on" +
                (_o.LayerDecay is { } d ? $", at the scheduled rate × {d}^k (layer decay)." : ", at the scheduled rate."));
        }

        private List<TorchSharp.Modules.Parameter> _trainable = new();

        // After an epoch that read every row from its start.
        private void CompleteTrunkCache(TrainingSession session)
        {
            if (_trunkCache is not { IsComplete: false } cache) return;
            cache.MarkComplete();
            session.TrunkComputed = null;
            _channel.Info(MessageSensitivity.None, $"Frozen trunk cached: {cache.Count} rows, {cache.BytesInMemory >> 20} MiB in memory, " +
                $"{cache.BytesOnDisk >> 20} MiB on disk; later epochs train the unfrozen part only.");
        }
    }
}
