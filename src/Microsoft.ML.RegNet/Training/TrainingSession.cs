using System.Diagnostics;
using Microsoft.ML.RegNet.Data.Mixing;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Data.Transforms;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Training;

/// <summary>One optimizer step: the batch's mean loss (before the update), top-1/top-5 hits, images and learning rate.</summary>
internal readonly record struct StepResult(double Loss, long Top1, long Top5, int Images, double LearningRate)
{
    public bool IsFinite => double.IsFinite(Loss);
}

/// <summary>
/// The model, optimizer, weight decay, schedule, batch mixing (with label smoothing) and the position in training of one Fit. <see cref="Step"/>
/// trains one batch and advances <see cref="State"/>; <see cref="Evaluate"/> scores data without changing anything.
/// It knows nothing about run folders, checkpoints or logging.
/// </summary>
internal sealed class TrainingSession : IDisposable
{
    private readonly RegNetModel _model;
    private readonly OptimizerHelper _optimizer;
    private readonly WeightDecay _decay;
    private readonly LearningRateSchedule _schedule;
    private readonly BatchMixer _mixer;
    private readonly int _seed;
    private IReadOnlyList<nn.Module> _frozen;
    private int? _trunkStages;
    private readonly double[] _learningRateScales;
    private readonly Device _device;
    private readonly Parameter[] _optimized;
    private FlatAdamStep? _flatStep;
    private bool _flatStepDecided;

    // trunkStages: stages frozen after the (frozen) stem; null when nothing is frozen. learningRateScales: the multiplier
    // of each of the optimizer's parameter groups, in order (null: 1 for every group).
    public TrainingSession(RegNetModel model, OptimizerHelper optimizer, WeightDecay decay, LearningRateSchedule schedule, BatchMixer mixer,
        int seed, IReadOnlyList<nn.Module> frozen, TrainingState state, int? trunkStages = null, IReadOnlyList<double>? learningRateScales = null)
    {
        _learningRateScales = learningRateScales?.ToArray() ?? Enumerable.Repeat(1.0, optimizer.ParamGroups.Count()).ToArray();
        if (_learningRateScales.Length != optimizer.ParamGroups.Count())
            throw new ArgumentException("One learning-rate multiplier per parameter group is needed.", nameof(learningRateScales));
        _trunkStages = trunkStages;
        _model = model;
        _optimizer = optimizer;
        _decay = decay;
        _schedule = schedule;
        _mixer = mixer;
        _seed = seed;
        _frozen = frozen;
        _device = model.parameters().First().device;
        _optimized = optimizer.parameters().ToArray();
        State = state;
    }

    /// <summary>Where training stands; <see cref="Step"/> advances it, the caller moves it to the next epoch.</summary>
    public TrainingState State { get; set; }

    public LearningRateSchedule Schedule => _schedule;

    private Action? _reduceGradients;

    /// <summary>Has <paramref name="reduce"/> run after backward and before weight decay and the optimizer step: data-parallel
    /// training averages the gradients over the processes there, in a flat buffer the gradients become views of, so they
    /// are zeroed in place before each step and the optimizer steps parameter by parameter. Without it, an Adam optimizer
    /// steps over flat buffers (<see cref="FlatAdamStep"/>); any other drops the gradients before each step, as PyTorch's
    /// <c>zero_grad(set_to_none=True)</c> does, so backward writes each one afresh instead of zeroing it and adding to it
    /// (the same values). Call it before the first step.</summary>
    public void ReduceGradientsWith(Action reduce) => _reduceGradients = reduce;

    /// <summary>Receives each batch's frozen trunk output (computed in eval mode without autograd) before the unfrozen part
    /// runs: the trainer's <see cref="TrainableInputCache"/> keeps it. Null: nothing.</summary>
    public Action<ImageBatch, Tensor>? TrunkComputed { get; set; }

    /// <summary>Combines <see cref="Evaluate"/>'s sums over processes before they become metrics (data-parallel). Null: nothing.</summary>
    public Action<MetricsAccumulator>? ReduceMetrics { get; set; }

    /// <summary>Trains <paramref name="batch"/> as the next step of the current epoch. A non-finite loss is returned
    /// before the update (weights unchanged, <see cref="State"/> not advanced) for the caller to report.</summary>
    public StepResult Step(ImageBatch batch)
    {
        int epoch = State.Epoch, stepInEpoch = State.BatchInEpoch;
        using var scope = NewDisposeScope();
        double lr = _schedule.At(epoch, stepInEpoch);
        int g = 0;
        foreach (var group in _optimizer.ParamGroups) group.LearningRate = lr * _learningRateScales[g++];

        var (batchImages, labels) = OnDevice(batch);
        var random = AugmentationRandom.ForEpoch(_seed, epoch, purpose: 0x4D49580000000000UL + (ulong)batch.Index);
        var (images, targets, _) = _mixer.Mix(batchImages, labels, random);

        _flatStep = FlatStep();
        ClearGradients();
        var logits = Forward(batch, images);
        var loss = -(targets * nn.functional.log_softmax(logits, 1)).sum(1).mean();
        double lossValue = loss.item<float>();
        if (!double.IsFinite(lossValue)) return new StepResult(lossValue, 0, 0, batch.Count, lr);
        loss.backward();
        _reduceGradients?.Invoke();
        if (_flatStep is { } flat) flat.Step();
        else
        {
            _decay.Apply(lr);
            _optimizer.step();
        }

        var (top1, top5) = Hits(logits, labels);
        State = State with { BatchInEpoch = stepInEpoch + 1, GlobalStep = State.GlobalStep + 1 };
        return new StepResult(lossValue, top1, top5, batch.Count, lr);
    }

    /// <summary>True once the first step chose <see cref="FlatAdamStep"/>.</summary>
    public bool StepsOverFlatBuffers => _flatStep is not null;

    // Decided at the first step, once the weights and the optimizer state are final (loaded, resumed, broadcast).
    private FlatAdamStep? FlatStep()
    {
        if (_flatStepDecided) return _flatStep;
        _flatStepDecided = true;
        return _reduceGradients is null ? FlatAdamStep.TryCreate(_optimizer, _decay) : null;
    }

    private void ClearGradients()
    {
        if (_flatStep is { } flat)
        {
            flat.ZeroGradients();
            return;
        }
        if (_reduceGradients is not null)
        {
            _optimizer.zero_grad();
            return;
        }
        foreach (var p in _optimized) p.grad = null;
    }

    // With a frozen trunk, it runs without autograd (in eval mode, SetTrainMode) or comes from the cache, and only the
    // rest of the network records a graph; otherwise the whole model.
    private Tensor Forward(ImageBatch batch, Tensor images)
    {
        if (_trunkStages is not { } stages) return _model.call(images);
        Tensor trunk = images;
        if (!batch.HoldsTrunkOutput)
        {
            using (no_grad()) trunk = _model.ForwardTrunk(images, stages);
            TrunkComputed?.Invoke(batch, trunk);
        }
        return _model.ForwardFromTrunk(trunk, stages);
    }

    /// <summary>Loss and accuracy on <paramref name="data"/> in evaluation mode; the model is back in training mode after.</summary>
    public RegNetTrainingMetrics Evaluate(ImageBatchPipeline pipeline, IDataView data, int epoch, long step, double lr, CancellationToken cancellation)
    {
        _model.eval();
        var acc = new MetricsAccumulator();
        using (no_grad())
        {
            foreach (var batch in pipeline.Read(data, epoch: 0, 0, cancellation))
            {
                using (batch)
                using (var scope = NewDisposeScope())
                {
                    var (images, labels) = OnDevice(batch);
                    var logits = _model.call(images);
                    var loss = nn.functional.cross_entropy(logits, labels);
                    var (c1, c5) = Hits(logits, labels);
                    acc.Add(loss.item<float>(), c1, c5, batch.Count);
                }
            }
        }
        SetTrainMode();
        ReduceMetrics?.Invoke(acc);
        return acc.ToMetrics(MetricsPhase.Validation, epoch, step, lr);
    }

    /// <summary>True while parts of the network are frozen.</summary>
    public bool HasFrozenParts => _frozen.Count > 0;

    /// <summary>The frozen parts train from the next step on (gradients, BatchNorm in training mode, the whole network
    /// forward with autograd); the caller has set their parameters' <c>requires_grad</c>, and the optimizer holds them.</summary>
    public void Unfreeze()
    {
        _frozen = Array.Empty<nn.Module>();
        _trunkStages = null;
        TrunkComputed = null;
        _flatStep?.AttachGradients();
        SetTrainMode();
    }

    /// <summary>Releases the flat step's buffers (the model keeps its weights).</summary>
    public void Dispose() => _flatStep?.Dispose();

    // Frozen parts keep their BatchNorm statistics.
    public void SetTrainMode()
    {
        _model.train();
        foreach (var module in _frozen) module.eval();
    }

    // Batches are assembled in host memory by the input pipeline; on another device they are copied there from pinned
    // memory (asynchronously). Called inside the caller's dispose scope.
    private (Tensor Images, Tensor Labels) OnDevice(ImageBatch batch)
    {
        if (_device.type == TorchSharp.DeviceType.CPU) return (batch.Images, batch.Labels!);
        return (batch.Images.pin_memory().to(_device, non_blocking: true), batch.Labels!.pin_memory().to(_device, non_blocking: true));
    }

    private static (long Top1, long Top5) Hits(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        int k = (int)Math.Min(5, logits.shape[1]);
        var top = logits.topk(k, 1).indexes;
        var match = top.eq(labels.unsqueeze(1));
        return (match.select(1, 0).sum().item<long>(), match.any(1).sum().item<long>());
    }
}

/// <summary>Averages step results into a metrics record.</summary>
internal sealed class MetricsAccumulator
{
    private double _lossSum;
    private long _top1, _top5;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    public long Images { get; private set; }

    public void Add(double loss, long top1, long top5, int count)
    {
        _lossSum += loss * count;
        _top1 += top1;
        _top5 += top5;
        Images += count;
    }

    public void Add(StepResult step) => Add(step.Loss, step.Top1, step.Top5, step.Images);

    /// <summary>Replaces the sums by <paramref name="reduce"/>'s result on them (data-parallel: the sums over all processes).</summary>
    public void Reduce(Action<double[]> reduce)
    {
        var sums = new[] { _lossSum, _top1, _top5, Images };
        reduce(sums);
        (_lossSum, _top1, _top5, Images) = (sums[0], (long)sums[1], (long)sums[2], (long)sums[3]);
    }

    public RegNetTrainingMetrics ToMetrics(MetricsPhase phase, int epoch, long step, double lr) => new(
        phase, epoch, step, Images == 0 ? double.NaN : _lossSum / Images, Images == 0 ? 0 : (double)_top1 / Images,
        Images == 0 ? 0 : (double)_top5 / Images, lr, Images / Math.Max(1e-9, _clock.Elapsed.TotalSeconds), Images);
}

/// <summary>Where metrics records go: the run folder, the user's callback, the ML.NET log.</summary>
internal interface IMetricsSink
{
    void Record(RegNetTrainingMetrics metrics);
}

internal sealed class DelegateMetricsSink(Action<RegNetTrainingMetrics> record) : IMetricsSink
{
    public void Record(RegNetTrainingMetrics metrics) => record(metrics);
}
