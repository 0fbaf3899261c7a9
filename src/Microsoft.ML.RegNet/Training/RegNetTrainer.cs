using System.Diagnostics;
using System.Text.Json.Nodes;
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
        var o = TrainerOptions;
        // Cancelled before anything was trained: there is no model to return.
        o.CancellationToken.ThrowIfCancellationRequested();
        TorchRuntime.EnsureAvailable();
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
        private CheckpointPolicy _checkpoints = null!;
        private int _stepsPerEpoch;
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
            if (_o.ResumeFrom is null) LoadStartingWeights();
            else if (_o.StartingWeightsPath is not null || _o.StartingModel is not null)
                _channel.Info(MessageSensitivity.None, "Resuming: the starting weights are not loaded, the checkpoint's weights are.");
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

            var state = new TrainingState(0, 0, 0, CheckpointPolicy.InitialBest(_o.EarlyStopping), 0, _model.Spec.ToJson(), _columns.ClassCount);
            long rows = CountRows(train);
            int stepsPerEpoch = (int)((rows + _o.BatchSize - 1) / _o.BatchSize);
            _stepsPerEpoch = stepsPerEpoch;
            OpenRunFolder(ref state, optimizer, rows);
            if (_o.CancellationToken.IsCancellationRequested && state.GlobalStep == 0)
            {
                _run?.Dispose();
                _o.CancellationToken.ThrowIfCancellationRequested();
            }
            var schedule = new LearningRateSchedule(_o.LearningRate * lrScale, _o.MaxEpochs, stepsPerEpoch, _o.Schedule, _o.ScheduleGranularity,
                _o.WarmupEpochs, _o.WarmupFactor, _o.StepMilestones, _o.StepGamma);
            var session = new TrainingSession(_model, optimizer, decay, schedule, mixer, _seed, _frozen, state);
            _sinks = new List<IMetricsSink>();
            if (_run is not null) _sinks.Add(_run);
            if (_o.MetricsCallback is { } callback) _sinks.Add(new DelegateMetricsSink(callback));
            _sinks.Add(new DelegateMetricsSink(m => _channel.Info(MessageSensitivity.None, m.ToString())));

            try
            {
                for (int epoch = session.State.Epoch; epoch < _o.MaxEpochs; epoch++)
                {
                    _channel.Trace(MessageSensitivity.None, $"Starting epoch {epoch}");
                    bool completed = TrainEpoch(train, session, trainPipeline);
                    if (!completed)
                    {
                        _stopReason = "cancelled";
                        _channel.Warning(MessageSensitivity.None, $"Training cancelled in epoch {epoch} after {session.State.GlobalStep} steps; returning the current weights.");
                        return;
                    }
                    session.State = session.State with { Epoch = epoch + 1, BatchInEpoch = 0 };
                    if (validation is not null)
                    {
                        var metrics = session.Evaluate(evalPipeline, validation, epoch, session.State.GlobalStep, schedule.At(epoch, stepsPerEpoch), _o.CancellationToken);
                        _lastValidation = metrics;
                        Report(metrics);
                        session.State = _checkpoints.AfterValidation(session.State, metrics);
                        FaultPoints.Hit("epoch:validated");
                    }
                    _checkpoints.SaveLatest(session.State);
                    _run?.PlotCurves();
                    if (_checkpoints.StopReason(session.State, epoch) is { } reason)
                    {
                        _stopReason = reason;
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
        private bool TrainEpoch(IDataView train, TrainingSession session, ImageBatchPipeline pipeline)
        {
            session.SetTrainMode();
            int epoch = session.State.Epoch, skipBatches = session.State.BatchInEpoch;
            var window = new MetricsAccumulator();
            var whole = new MetricsAccumulator();
            double lr = session.Schedule.At(epoch, skipBatches);
            using var batches = pipeline.Read(train, epoch, skipBatches, _o.CancellationToken).GetEnumerator();
            while (true)
            {
                try
                {
                    if (!batches.MoveNext()) break;
                }
                catch (OperationCanceledException) when (_o.CancellationToken.IsCancellationRequested)
                {
                    return SaveOnCancel(session.State);
                }
                using (var batch = batches.Current)
                {
                    if (_o.CancellationToken.IsCancellationRequested) return SaveOnCancel(session.State);
                    var step = session.Step(batch);
                    if (!step.IsFinite)
                        throw new InvalidOperationException(
                            $"The training loss became {step.Loss} at epoch {epoch}, step {session.State.BatchInEpoch}. Lower the learning rate or check the data. " +
                            _checkpoints.LastGoodSentence);
                    lr = step.LearningRate;
                    window.Add(step);
                    whole.Add(step);
                    var state = session.State;
                    if (state.GlobalStep % _o.LogEveryNSteps == 0)
                    {
                        _lastTrain = window.ToMetrics(MetricsPhase.TrainSteps, epoch, state.GlobalStep, lr);
                        Report(_lastTrain);
                        window = new MetricsAccumulator();
                    }
                    // After an epoch's last step the epoch-end checkpoint follows; writing both would make previous.ckpt a copy of latest.
                    if (_o.CheckpointEveryNSteps > 0 && state.GlobalStep % _o.CheckpointEveryNSteps == 0 && state.BatchInEpoch < _stepsPerEpoch)
                        _checkpoints.SaveLatest(state);
                    FaultPoints.Hit("step");
                }
            }
            if (_o.CancellationToken.IsCancellationRequested) return SaveOnCancel(session.State);
            // Resumed from a checkpoint written after the epoch's last step: nothing of the epoch is left to train.
            if (whole.Images == 0 && skipBatches > 0 && skipBatches >= _stepsPerEpoch) return true;
            if (whole.Images == 0)
                throw new InvalidOperationException(epoch == 0 && skipBatches == 0
                    ? "The training data is empty (no row had a decodable image and a label)."
                    : $"Epoch {epoch} produced no batches.");
            _lastTrain = whole.ToMetrics(MetricsPhase.TrainEpoch, epoch, session.State.GlobalStep, lr);
            Report(_lastTrain);
            return true;
        }

        private bool SaveOnCancel(TrainingState state)
        {
            _checkpoints.SaveLatest(state);
            return false;
        }

        private List<IMetricsSink> _sinks = new();

        private void Report(RegNetTrainingMetrics metrics)
        {
            foreach (var sink in _sinks) sink.Record(metrics);
        }

        private static long CountRows(IDataView train)
        {
            long? rows = train.GetRowCount();
            if (rows is null)
            {
                rows = 0;
                using var cursor = train.GetRowCursor(Array.Empty<DataViewSchema.Column>());
                while (cursor.MoveNext()) rows++;
            }
            if (rows == 0) throw new InvalidOperationException("The training data is empty.");
            return rows.Value;
        }

        private void OpenRunFolder(ref TrainingState state, OptimizerHelper optimizer, long rows)
        {
            var config = TrainerConfig.ToJson(TrainerConfig.Describe(_o, _model.Spec, _columns, _seed, rows));
            _checkpoints = new CheckpointPolicy(null, _o.EarlyStopping, _model, optimizer);
            if (_o.ResumeFrom is { } resume)
            {
                var (checkpoint, runFolder) = ResolveResume(resume);
                List<string> allowed = new();
                var header = Checkpoint.Load(checkpoint, _model, optimizer, h =>
                {
                    if (h.Config is null) return;
                    var (refused, changed) = TrainerConfig.Compare(h.Config, config);
                    if (refused.Count > 0)
                        throw new ArgumentException(
                            $"Cannot resume from {checkpoint}: these options or data differ from the run's configuration (config.json, also stored in the checkpoint), " +
                            $"and the resumed training would not continue it:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", refused) +
                            $"{Environment.NewLine}Use the run's values, or start a new run (ResumeFrom = null, StartingWeightsPath = \"{checkpoint}\" to start from its weights).", "options");
                    allowed = changed;
                });
                state = header.State;
                foreach (var change in allowed) _channel.Info(MessageSensitivity.None, $"Resume: changed {change}");
                if (runFolder is not null && Path.GetFileName(checkpoint) == RunDirectory.PreviousCheckpointName) SetAsideReplacedLatest(runFolder);
                if (runFolder is not null)
                {
                    try
                    {
                        _run = RunDirectory.Open(runFolder, header.MetricsRecords);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        throw new IOException($"Cannot continue the run folder {runFolder}: {e.Message}. Nothing in it was changed by this resume " +
                            "except what the message names. Make the folder writable (or free space) and resume again.", e);
                    }
                }
                else if (_o.WorkspacePath is not null) _run = RunDirectory.Create(_o.WorkspacePath, _model.Spec.Name, DateTime.Now);
                else
                    _channel.Warning(MessageSensitivity.None,
                        $"{checkpoint} is not inside a run folder's checkpoints/ and WorkspacePath is not set: no further checkpoints or metrics are written.");
                if (_run is not null)
                {
                    var old = _run.ReadConfig();
                    var resumes = old?["resumes"] is JsonArray a ? (JsonArray)a.DeepClone() : new JsonArray();
                    resumes.Add(new JsonObject
                    {
                        ["from"] = Path.GetFullPath(checkpoint), ["step"] = state.GlobalStep,
                        ["at"] = DateTime.Now.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
                        ["changed"] = new JsonArray(allowed.Select(c => (JsonNode)c).ToArray()),
                    });
                    if (old?["started"] is { } started) config["started"] = started.DeepClone();
                    config["resumes"] = resumes;
                    _run.WriteConfig(config);
                    foreach (var file in _run.RemovedTemporaries)
                        _channel.Info(MessageSensitivity.None, $"Removed {file}, left by a checkpoint or file write that was interrupted.");
                    if (_run.DroppedRecords > 0)
                        _channel.Info(MessageSensitivity.None, $"Dropped {_run.DroppedRecords} metrics records written after {checkpoint}; those steps run again.");
                }
                _checkpoints = new CheckpointPolicy(_run, _o.EarlyStopping, _model, optimizer) { Config = config, LastGood = (Path.GetFullPath(checkpoint), state.GlobalStep) };
                _channel.Info(MessageSensitivity.None, $"Resuming from {checkpoint}: epoch {state.Epoch}, batch {state.BatchInEpoch}, step {state.GlobalStep}" +
                    (_run is null ? "." : $"; run folder {_run.Path}."));
                return;
            }
            if (_o.WorkspacePath is null) return;
            _run = RunDirectory.Create(_o.WorkspacePath, _model.Spec.Name, DateTime.Now);
            _run.WriteConfig(config);
            _checkpoints = new CheckpointPolicy(_run, _o.EarlyStopping, _model, optimizer) { Config = config };
            _channel.Info(MessageSensitivity.None, $"Run folder: {_run.Path}");
        }

        // The checkpoint file to resume from and the run folder it belongs to (null: a file outside a run folder).
        private (string Checkpoint, string? RunFolder) ResolveResume(string resume)
        {
            string? runFolder;
            string checkpoint;
            if (Directory.Exists(resume))
            {
                runFolder = resume;
                checkpoint = Path.Combine(resume, "checkpoints", _o.ResumeFromPreviousCheckpoint ? RunDirectory.PreviousCheckpointName : RunDirectory.LatestCheckpointName);
            }
            else if (File.Exists(resume))
            {
                runFolder = RunDirectory.OfCheckpoint(resume);
                checkpoint = resume;
                if (_o.ResumeFromPreviousCheckpoint)
                {
                    if (runFolder is null)
                        throw new ArgumentException($"ResumeFromPreviousCheckpoint needs a run folder (or a checkpoint inside its checkpoints/ folder); {resume} is not in one. " +
                            "Pass the checkpoint to resume from as ResumeFrom instead.", "options");
                    checkpoint = Path.Combine(runFolder, "checkpoints", RunDirectory.PreviousCheckpointName);
                }
            }
            else throw new FileNotFoundException($"Cannot resume: {resume} does not exist. Pass a run folder written with a WorkspacePath or a .ckpt file.", resume);
            if (!File.Exists(checkpoint))
            {
                string previous = Path.Combine(Path.GetDirectoryName(checkpoint)!, RunDirectory.PreviousCheckpointName);
                throw new FileNotFoundException($"Cannot resume: {checkpoint} does not exist." +
                    (!_o.ResumeFromPreviousCheckpoint && File.Exists(previous)
                        ? $" {previous} does: set ResumeFromPreviousCheckpoint = true to resume from it."
                        : " The run was stopped before its first checkpoint; start it again without ResumeFrom."), checkpoint);
            }
            return (checkpoint, runFolder);
        }

        // Resuming from previous.ckpt supersedes latest.ckpt; it is kept under another name rather than rotated into
        // previous.ckpt by the next write (it may be the damaged file the user is recovering from).
        private void SetAsideReplacedLatest(string runFolder)
        {
            string latest = Path.Combine(runFolder, "checkpoints", RunDirectory.LatestCheckpointName);
            if (!File.Exists(latest)) return;
            string aside = Path.Combine(runFolder, "checkpoints", "latest.replaced.ckpt");
            File.Move(latest, aside, overwrite: true);
            _channel.Warning(MessageSensitivity.None, $"Resuming from previous.ckpt: {latest} was renamed to {aside} (kept, not used).");
        }

        private void LoadStartingWeights()
        {
            if (_o.StartingModel is { } start)
            {
                CopyWeightsFrom(start.Model, "the starting model");
            }
            else if (_o.StartingWeightsPath is { } path && File.Exists(path) && Checkpoint.LooksLikeCheckpoint(path))
            {
                // A checkpoint of this trainer: its model weights only (a new run, new optimizer and schedule).
                var header = Checkpoint.ReadHeader(path);
                if (!_model.Spec.MatchesStored(header.State.Architecture))
                    throw new ArgumentException($"The starting checkpoint {path} was written for {header.State.Architecture}, but this run trains {_model.Spec}. " +
                        "Set Architecture (or Spec) to the checkpoint's architecture.", "options");
                using var source = new RegNetModel(_model.Spec, header.State.NumClasses);
                Checkpoint.Load(path, source, optimizer: null);
                CopyWeightsFrom(source, path);
                _model.Padding = source.Padding;
            }
            else if (_o.StartingWeightsPath is { } file)
            {
                // Any format RegNetWeights reads (Keras .h5, .pth/.pyth, safetensors, own format); a classifier of another size is re-initialised.
                var report = RegNetWeights.Load(_model, file, new WeightLoadOptions { Strict = true, ReinitializeClassifierOnMismatch = true });
                _channel.Info(MessageSensitivity.None, $"Starting weights from {file}: {report}");
            }
        }

        private void CopyWeightsFrom(RegNetModel from, string what)
        {
            // Everything but the classifier must fit exactly; a classifier of another size stays freshly initialised.
            bool sameHead = from.NumClasses == _model.NumClasses;
            var source = from.state_dict()
                .Where(kv => sameHead || !kv.Key.StartsWith(ClassifierPrefix, StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key, kv => kv.Value);
            var report = StateDictLoader.Load(_model, source, Weights.Layouts.StateDictLayout.Timm, strict: false);
            if (report.Unexpected.Count > 0 || report.Mismatched.Count > 0 || report.Missing.Any(n => !n.StartsWith(ClassifierPrefix, StringComparison.Ordinal)))
                throw new ArgumentException($"The starting model does not match {_model.Spec.Name} apart from the classifier: {report}");
            _channel.Info(MessageSensitivity.None, $"Starting weights from {what}: {report}" +
                (sameHead ? "" : $" (classifier re-initialised: {from.NumClasses} → {_model.NumClasses} classes)"));
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
    }
}
