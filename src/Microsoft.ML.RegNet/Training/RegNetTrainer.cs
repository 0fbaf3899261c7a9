using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Configs;
using Microsoft.ML.RegNet.Data.Mixing;
using Microsoft.ML.RegNet.Data.MLNet;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Models;
using Microsoft.ML.RegNet.Runtime;
using Microsoft.ML.RegNet.Weights;
using Microsoft.ML.RegNet.Weights.Formats;
using Microsoft.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Training;

/// <summary>
/// Trains a RegNet image classifier end to end inside an ML.NET pipeline.
/// </summary>
/// <remarks>
/// | Input / output | Type |
/// |---|---|
/// | Label (input) | key type (use <c>MapValueToKey</c>) |
/// | Image (input) | <c>MLImage</c> (<c>LoadImages</c>) or variable-size vector of Byte (<c>LoadRawImageBytes</c>) |
/// | Score (output) | vector of Single, softmax probabilities, slot names = class names |
/// | PredictedLabel (output) | key type of the label |
///
/// Streams the data through cursors (a data set larger than memory trains), decodes and augments on worker threads while
/// the model trains, and with a workspace writes a run folder (config, metrics, TensorBoard, curves, checkpoints).
/// Exportable to ONNX through the saved model.
/// </remarks>
public sealed partial class RegNetTrainer : IEstimator<RegNetTransformer>
{
    private readonly IHostEnvironment _env;
    private readonly IHost _host;

    internal RegNetTrainer(IHostEnvironment env, Options options)
    {
        _env = env ?? throw new ArgumentNullException(nameof(env));
        TrainerOptions = options ?? throw new ArgumentNullException(nameof(options));
        _host = env.Register(nameof(RegNetTrainer));
        Validate(options);
    }

    /// <summary>The options this trainer was created with.</summary>
    public Options TrainerOptions { get; }

    /// <summary>The architecture that will be trained.</summary>
    public RegNetSpec Spec => TrainerOptions.Spec ?? RegNetSpec.FromName(TrainerOptions.Architecture);

    private static void Validate(Options o)
    {
        static void Require(bool ok, string message) { if (!ok) throw new ArgumentException(message, "options"); }
        _ = o.Spec ?? RegNetSpec.FromName(o.Architecture);
        Require(o.ImageSize >= RegNetModel.MinimumInputSize, $"ImageSize must be at least {RegNetModel.MinimumInputSize} (got {o.ImageSize}).");
        Require(o.BatchSize >= 1, $"BatchSize must be at least 1 (got {o.BatchSize}).");
        Require(o.MaxEpochs >= 1, $"MaxEpochs must be at least 1 (got {o.MaxEpochs}).");
        Require(o.LearningRate > 0 && double.IsFinite(o.LearningRate), $"LearningRate must be positive (got {o.LearningRate}).");
        Require(o.WeightDecay >= 0, $"WeightDecay must be ≥ 0 (got {o.WeightDecay}).");
        Require(o.WarmupEpochs >= 0 && o.WarmupFactor > 0 && o.WarmupFactor <= 1, "WarmupEpochs must be ≥ 0 and WarmupFactor in (0, 1].");
        Require(o.LabelSmoothing is >= 0 and < 1, $"LabelSmoothing must be in [0, 1) (got {o.LabelSmoothing}).");
        Require(o.ValidationFraction is null or (> 0 and < 1), $"ValidationFraction must be in (0, 1) (got {o.ValidationFraction}).");
        Require(o.FreezeStages is >= 0 and <= 4, $"FreezeStages must be 0…4 (got {o.FreezeStages}).");
        Require(o.LogEveryNSteps >= 1, "LogEveryNSteps must be at least 1.");
        o.Augmentation.Validate();
        o.Mixing.Validate();
    }

    /// <summary>Describes the output columns for an input schema.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var o = TrainerOptions;
        var label = inputSchema.FirstOrDefault(c => c.Name == o.LabelColumnName);
        if (label.Name is null) throw new ArgumentException($"Label column '{o.LabelColumnName}' not found.", nameof(inputSchema));
        if (!label.IsKey) throw new ArgumentException(LabelNotKeyMessage(o.LabelColumnName, label.ItemType), nameof(inputSchema));
        if (!inputSchema.Any(c => c.Name == o.ImageColumnName)) throw new ArgumentException($"Image column '{o.ImageColumnName}' not found.", nameof(inputSchema));
        var columns = inputSchema.ToDictionary(c => c.Name);
        columns[o.ScoreColumnName] = MLNetInternals.SchemaColumn(o.ScoreColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false,
            MLNetInternals.TextVectorAnnotations("SlotNames", "TrainingLabelValues"));
        columns[o.PredictedLabelColumnName] = MLNetInternals.SchemaColumn(o.PredictedLabelColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true,
            MLNetInternals.TextVectorAnnotations(InputColumns.AnnotationUtilsKeyValues));
        return new SchemaShape(columns.Values);
    }

    /// <summary>Trains on <paramref name="input"/> and returns the scoring transformer.</summary>
    public RegNetTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        TorchRuntime.EnsureAvailable();
        var o = TrainerOptions;
        var columns = InputColumns.Resolve(input.Schema, o.LabelColumnName, o.ImageColumnName, "training data");
        IDataView train = input;
        IDataView? validation = o.ValidationSet;
        int seed = o.Seed ?? MLNetInternals.Seed(_env) ?? 1;
        if (validation is not null)
        {
            var v = InputColumns.Resolve(validation.Schema, o.LabelColumnName, o.ImageColumnName, "validation set");
            if (v.ClassCount != columns.ClassCount || !v.ClassNames.SequenceEqual(columns.ClassNames))
                throw new ArgumentException(
                    $"The validation set's label has {v.ClassCount} key values ({string.Join(", ", v.ClassNames.Take(5))}…) but the training data's has " +
                    $"{columns.ClassCount} ({string.Join(", ", columns.ClassNames.Take(5))}…). Map both with the same MapValueToKey transformer (fit it once, apply it to both).");
        }
        else if (o.ValidationFraction is { } fraction)
        {
            var split = new MLContext(seed).Data.TrainTestSplit(input, fraction, seed: seed);
            (train, validation) = (split.TrainSet, split.TestSet);
        }

        using var channel = _host.Start("Training");
        if (o.NumberOfThreads is { } threads) torch.set_num_threads(threads);
        var spec = Spec;
        // This Fit's own random state: the process-wide generator is shared by concurrent Fits (README, "Determinism").
        using var generator = new Generator(unchecked((ulong)seed));
        var model = new RegNetModel(spec, columns.ClassCount, o.ZeroInitLastBatchNorm, generator);
        try
        {
            var loop = new TrainingLoop(this, model, columns, seed, channel);
            loop.Run(train, validation);
            channel.Info(MessageSensitivity.None, $"Training finished: {loop.Summary}");
            return new RegNetTransformer(_env, model, columns.LabelType, columns.ClassNames, o.Normalization, o.ImageSize, o.CropFraction,
                o.ImageColumnName, o.ScoreColumnName, o.PredictedLabelColumnName, loop.RunPath, columns.ImageIsBytes);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    internal static string LabelNotKeyMessage(string column, DataViewType type) =>
        $"Label column '{column}' has type {type}, but RegNet needs a key type. Add mlContext.Transforms.Conversion.MapValueToKey(\"{column}\") before the trainer " +
        "(and MapKeyToValue(\"PredictedLabel\") after it to get the class names back).";


    /// <summary>One Fit: the model, optimizer, schedule, data pipelines and run folder.</summary>
    private sealed class TrainingLoop
    {
        private readonly RegNetTrainer _trainer;
        private readonly Options _o;
        private readonly RegNetModel _model;
        private readonly InputColumns _columns;
        private readonly int _seed;
        private readonly IChannel _channel;
        private RunDirectory? _run;
        private RegNetTrainingMetrics? _lastTrain;
        private RegNetTrainingMetrics? _lastValidation;
        private string _stopReason = "completed";

        public TrainingLoop(RegNetTrainer trainer, RegNetModel model, InputColumns columns, int seed, IChannel channel)
        {
            _trainer = trainer;
            _o = trainer.TrainerOptions;
            _model = model;
            _columns = columns;
            _seed = seed;
            _channel = channel;
        }

        public string? RunPath => _run?.Path;

        public string Summary => $"{_stopReason}; last train {_lastTrain}; last validation {(object?)_lastValidation ?? "none"}" +
                                 (_run is null ? "" : $"; run folder {_run.Path}");

        public void Run(IDataView train, IDataView? validation)
        {
            LoadStartingWeights();
            var trainable = Freeze();
            var (optimizer, decay) = CreateOptimizer(trainable);
            using var _ = optimizer;
            var trainPipeline = new ImageBatchPipeline(new ImageBatchPipelineOptions
            {
                ImageColumn = _o.ImageColumnName, LabelColumn = _o.LabelColumnName, BatchSize = _o.BatchSize, ImageSize = _o.ImageSize,
                Augmentation = _o.Augmentation, Normalization = _o.Normalization, Seed = _seed, WorkerThreads = _o.WorkerThreads,
                Shuffle = _o.Shuffle, ShufflePoolSize = _o.ShufflePoolSize, DropLast = false, BadImagePolicy = _o.BadImagePolicy,
            });
            // Validation sees the evaluation transform that scoring and the saved model use: its ML.NET steps on the view.
            var evalPipeline = new ImageBatchPipeline(trainPipeline.Options with
            {
                ImageColumn = EvaluationPreprocessing.ResizedColumnName, Augmentation = AugmentationOptions.Evaluation(_o.CropFraction), Shuffle = false,
            });
            if (validation is not null)
                validation = EvaluationPreprocessing.Apply(validation, new EvaluationCrop(_o.ImageSize, _o.CropFraction), _o.ImageColumnName, _columns.ImageIsBytes);
            var mixer = new BatchMixer(_o.Mixing, _columns.ClassCount, _o.LabelSmoothing);
            double lrScale = _o.LearningRateReferenceBatchSize is { } reference ? (double)_o.BatchSize / reference : 1.0;

            var state = new TrainingState(0, 0, 0, _o.EarlyStopping?.Worst ?? double.NegativeInfinity, 0, _model.Spec.ToString(), _columns.ClassCount);
            OpenRunFolder(ref state, optimizer);
            int stepsPerEpoch = StepsPerEpoch(train);
            var schedule = new LearningRateSchedule(_o.LearningRate * lrScale, _o.MaxEpochs, stepsPerEpoch, _o.Schedule, _o.ScheduleGranularity,
                _o.WarmupEpochs, _o.WarmupFactor, _o.StepMilestones, _o.StepGamma);

            try
            {
                for (int epoch = state.Epoch; epoch < _o.MaxEpochs; epoch++)
                {
                    _channel.Trace(MessageSensitivity.None, $"Starting epoch {epoch}");
                    bool completed = TrainEpoch(train, epoch, state.BatchInEpoch, trainPipeline, mixer, optimizer, decay, schedule, ref state);
                    if (!completed)
                    {
                        _stopReason = "cancelled";
                        _channel.Warning(MessageSensitivity.None, $"Training cancelled in epoch {epoch} after {state.GlobalStep} steps; returning the current weights.");
                        return;
                    }
                    state = state with { Epoch = epoch + 1, BatchInEpoch = 0 };
                    if (validation is not null)
                    {
                        var metrics = Evaluate(evalPipeline, validation, epoch, state.GlobalStep, schedule.At(epoch, stepsPerEpoch));
                        _lastValidation = metrics;
                        Report(metrics);
                        if (_o.EarlyStopping is { } stopping)
                        {
                            double value = stopping.Pick(metrics);
                            bool improved = stopping.Improves(value, state.BestMetric);
                            state = improved
                                ? state with { BestMetric = value, EpochsWithoutImprovement = 0 }
                                : state with { EpochsWithoutImprovement = state.EpochsWithoutImprovement + 1 };
                            if (improved && _run is not null) Checkpoint.Save(_run.BestCheckpoint, state, _model, optimizer);
                        }
                        else if (_run is not null && metrics.Accuracy > state.BestMetric)
                        {
                            state = state with { BestMetric = metrics.Accuracy };
                            Checkpoint.Save(_run.BestCheckpoint, state, _model, optimizer);
                        }
                    }
                    if (_run is not null)
                    {
                        Checkpoint.Save(_run.LatestCheckpoint, state, _model, optimizer);
                        _run.PlotCurves();
                    }
                    if (_o.EarlyStopping is { } es && state.EpochsWithoutImprovement >= es.Patience)
                    {
                        _stopReason = $"early stopping after epoch {epoch} ({es.Metric} did not improve by {es.MinDelta} for {es.Patience} epochs)";
                        _channel.Info(MessageSensitivity.None, _stopReason);
                        return;
                    }
                }
            }
            finally
            {
                _run?.Dispose();
                if (trainPipeline.BadImagesSkipped > 0)
                    _channel.Warning(MessageSensitivity.None, $"{trainPipeline.BadImagesSkipped} training images were unreadable or could not be decoded and were skipped: {trainPipeline.DescribeBadRows()}");
            }
        }

        // Returns false when cancelled.
        private bool TrainEpoch(IDataView train, int epoch, int skipBatches, ImageBatchPipeline pipeline, BatchMixer mixer, OptimizerHelper optimizer,
            WeightDecay decay, LearningRateSchedule schedule, ref TrainingState state)
        {
            SetTrainMode();
            var window = new Accumulator();
            var whole = new Accumulator();
            int stepInEpoch = skipBatches;
            using var batches = pipeline.Read(train, epoch, skipBatches, _o.CancellationToken).GetEnumerator();
            while (true)
            {
                try
                {
                    if (!batches.MoveNext()) break;
                }
                catch (OperationCanceledException) when (_o.CancellationToken.IsCancellationRequested)
                {
                    return SaveOnCancel(state, optimizer);
                }
                var batch = batches.Current;
                using (batch)
                using (var scope = NewDisposeScope())
                {
                    if (_o.CancellationToken.IsCancellationRequested) return SaveOnCancel(state, optimizer);
                    double lr = schedule.At(epoch, stepInEpoch);
                    foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;

                    var labels = batch.Labels!;
                    var random = AugmentationRandom.ForEpoch(_seed, epoch, purpose: 0x4D49580000000000UL + (ulong)batch.Index);
                    var (images, targets, _) = mixer.Mix(batch.Images, labels, random);

                    optimizer.zero_grad();
                    var logits = _model.call(images);
                    var loss = -(targets * nn.functional.log_softmax(logits, 1)).sum(1).mean();
                    double lossValue = loss.item<float>();
                    if (!double.IsFinite(lossValue))
                        throw new InvalidOperationException(
                            $"The training loss became {lossValue} at epoch {epoch}, step {stepInEpoch}. Lower the learning rate or check the data. " +
                            (_run is null ? "No checkpoint was written (set WorkspacePath to keep them)." : $"The last good checkpoint is {_run.LatestCheckpoint}."));
                    loss.backward();
                    decay.Apply(lr);
                    optimizer.step();

                    var (correct, correct5) = Hits(logits, labels);
                    window.Add(lossValue, correct, correct5, batch.Count);
                    whole.Add(lossValue, correct, correct5, batch.Count);
                    stepInEpoch++;
                    state = state with { BatchInEpoch = stepInEpoch, GlobalStep = state.GlobalStep + 1 };
                    if (state.GlobalStep % _o.LogEveryNSteps == 0)
                    {
                        _lastTrain = window.ToMetrics(MetricsPhase.TrainSteps, epoch, state.GlobalStep, lr);
                        Report(_lastTrain);
                        window = new Accumulator();
                    }
                    if (_run is not null && _o.CheckpointEveryNSteps > 0 && state.GlobalStep % _o.CheckpointEveryNSteps == 0)
                        Checkpoint.Save(_run.LatestCheckpoint, state, _model, optimizer);
                }
            }
            if (_o.CancellationToken.IsCancellationRequested) return SaveOnCancel(state, optimizer);
            if (whole.Images == 0)
                throw new InvalidOperationException(epoch == 0 && skipBatches == 0
                    ? "The training data is empty (no row had a decodable image and a label)."
                    : $"Epoch {epoch} produced no batches.");
            _lastTrain = whole.ToMetrics(MetricsPhase.TrainEpoch, epoch, state.GlobalStep, schedule.At(epoch, stepInEpoch - 1));
            Report(_lastTrain);
            return true;
        }

        private bool SaveOnCancel(TrainingState state, OptimizerHelper optimizer)
        {
            if (_run is not null) Checkpoint.Save(_run.LatestCheckpoint, state, _model, optimizer);
            return false;
        }

        private RegNetTrainingMetrics Evaluate(ImageBatchPipeline pipeline, IDataView data, int epoch, long step, double lr)
        {
            _model.eval();
            var acc = new Accumulator();
            using (no_grad())
            {
                foreach (var batch in pipeline.Read(data, epoch: 0, 0, _o.CancellationToken))
                {
                    using (batch)
                    using (var scope = NewDisposeScope())
                    {
                        var logits = _model.call(batch.Images);
                        var loss = nn.functional.cross_entropy(logits, batch.Labels!);
                        var (c1, c5) = Hits(logits, batch.Labels!);
                        acc.Add(loss.item<float>(), c1, c5, batch.Count);
                    }
                }
            }
            SetTrainMode();
            return acc.ToMetrics(MetricsPhase.Validation, epoch, step, lr);
        }

        private static (long Top1, long Top5) Hits(Tensor logits, Tensor labels)
        {
            using var scope = NewDisposeScope();
            int k = (int)Math.Min(5, logits.shape[1]);
            var top = logits.topk(k, 1).indexes;
            var match = top.eq(labels.unsqueeze(1));
            return (match.select(1, 0).sum().item<long>(), match.any(1).sum().item<long>());
        }

        private void Report(RegNetTrainingMetrics metrics)
        {
            _run?.Record(metrics);
            _o.MetricsCallback?.Invoke(metrics);
            _channel.Info(MessageSensitivity.None, metrics.ToString());
        }

        private int StepsPerEpoch(IDataView train)
        {
            long? rows = train.GetRowCount();
            if (rows is null)
            {
                rows = 0;
                using var cursor = train.GetRowCursor(Array.Empty<DataViewSchema.Column>());
                while (cursor.MoveNext()) rows++;
            }
            if (rows == 0) throw new InvalidOperationException("The training data is empty.");
            return (int)((rows.Value + _o.BatchSize - 1) / _o.BatchSize);
        }

        private void OpenRunFolder(ref TrainingState state, OptimizerHelper optimizer)
        {
            if (_o.ResumeFrom is { } resume)
            {
                string checkpoint = Directory.Exists(resume) ? Path.Combine(resume, "checkpoints", "latest.ckpt") : resume;
                if (!File.Exists(checkpoint))
                    throw new FileNotFoundException($"Cannot resume: {checkpoint} does not exist. Pass a run folder written with a WorkspacePath or a .ckpt file.", checkpoint);
                state = Checkpoint.Load(checkpoint, _model, optimizer);
                _run = Directory.Exists(resume) ? RunDirectory.Open(resume) : null;
                _channel.Info(MessageSensitivity.None, $"Resuming from {checkpoint}: epoch {state.Epoch}, batch {state.BatchInEpoch}, step {state.GlobalStep}.");
                return;
            }
            if (_o.WorkspacePath is null) return;
            _run = RunDirectory.Create(_o.WorkspacePath, _model.Spec.Name, DateTime.Now);
            _run.WriteConfig(TrainerConfig.Describe(_o, _model.Spec, _columns, _seed));
            _channel.Info(MessageSensitivity.None, $"Run folder: {_run.Path}");
        }

        private void LoadStartingWeights()
        {
            if (_o.StartingModel is { } start)
            {
                // Everything but the classifier must fit exactly; a classifier of another size stays freshly initialised.
                bool sameHead = start.Model.NumClasses == _model.NumClasses;
                var source = start.Model.state_dict()
                    .Where(kv => sameHead || !kv.Key.StartsWith(ClassifierPrefix, StringComparison.Ordinal))
                    .ToDictionary(kv => kv.Key, kv => kv.Value);
                var report = StateDictLoader.Load(_model, source, Weights.Layouts.StateDictLayout.Timm, strict: false);
                if (report.Unexpected.Count > 0 || report.Mismatched.Count > 0 || report.Missing.Any(n => !n.StartsWith(ClassifierPrefix, StringComparison.Ordinal)))
                    throw new ArgumentException($"The starting model does not match {_model.Spec.Name} apart from the classifier: {report}");
                _channel.Info(MessageSensitivity.None, $"Starting weights from the starting model: {report}" +
                    (sameHead ? "" : $" (classifier re-initialised: {start.Model.NumClasses} → {_model.NumClasses} classes)"));
            }
            else if (_o.StartingWeightsPath is { } path)
            {
                // Any format RegNetWeights reads (Keras .h5, .pth/.pyth, safetensors, own format); a classifier of another size is re-initialised.
                var report = RegNetWeights.Load(_model, path, new WeightLoadOptions { Strict = true, ReinitializeClassifierOnMismatch = true });
                _channel.Info(MessageSensitivity.None, $"Starting weights from {path}: {report}");
            }
        }

        private const string ClassifierPrefix = "head.";

        private IEnumerable<Parameter> Freeze()
        {
            var frozen = new List<nn.Module>();
            if (_o.FreezeStem || _o.FreezeStages > 0) frozen.Add(_model.Stem);
            frozen.AddRange(_model.Stages.Take(_o.FreezeStages));
            foreach (var module in frozen)
                foreach (var p in module.parameters()) p.requires_grad = false;
            _frozen = frozen;
            return _model.parameters().Where(p => p.requires_grad);
        }

        private List<nn.Module> _frozen = new();

        // Frozen parts keep their BatchNorm statistics.
        private void SetTrainMode()
        {
            _model.train();
            foreach (var module in _frozen) module.eval();
        }

        private (OptimizerHelper, WeightDecay) CreateOptimizer(IEnumerable<Parameter> trainable)
        {
            var parameters = trainable.ToList();
            var noDecay = _o.ExcludeNormAndBiasFromWeightDecay
                ? parameters.Where(p => p.dim() <= 1).ToHashSet()
                : new HashSet<Parameter>();
            var decay = new WeightDecay(parameters.Where(p => !noDecay.Contains(p)), _o.WeightDecay, _o.WeightDecaySemantics);
            OptimizerHelper optimizer = _o.Optimizer switch
            {
                OptimizerKind.AdamW => optim.Adam(parameters, _o.LearningRate, _o.AdamBeta1, _o.AdamBeta2, _o.AdamEpsilon),
                OptimizerKind.Sgd => optim.SGD(parameters, _o.LearningRate, _o.Momentum, nesterov: _o.Nesterov),
                _ => throw new ArgumentOutOfRangeException(nameof(Options.Optimizer)),
            };
            return (optimizer, decay);
        }

        private sealed class Accumulator
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

            public RegNetTrainingMetrics ToMetrics(MetricsPhase phase, int epoch, long step, double lr) => new(
                phase, epoch, step, Images == 0 ? double.NaN : _lossSum / Images, Images == 0 ? 0 : (double)_top1 / Images,
                Images == 0 ? 0 : (double)_top5 / Images, lr, Images / Math.Max(1e-9, _clock.Elapsed.TotalSeconds), Images);
        }
    }
}
