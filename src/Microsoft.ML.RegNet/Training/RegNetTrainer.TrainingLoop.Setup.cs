using System.Text.Json.Nodes;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Weights;
using Microsoft.ML.Runtime;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet;

public sealed partial class RegNetTrainer
{
    // Setting up one Fit: the run folder (new or resumed), starting weights, frozen parts and the optimizer.
    private sealed partial class TrainingLoop
    {
        private void OpenRunFolder(ref TrainingState state, OptimizerHelper optimizer, long rows)
        {
            _checkpoints = new CheckpointPolicy(null, _o.EarlyStopping, _model, optimizer);
            // Data-parallel: only rank 0 resumes and writes; the other ranks receive its state (SynchronizeStart).
            if (!IsRoot) return;
            // Described only for a run folder: nothing else reads it, and its first use costs ~0.15 s of reflection.
            JsonObject Config() => TrainerConfig.ToJson(TrainerConfig.Describe(_o, _model.Spec, _columns, _seed, rows));
            if (_o.ResumeFrom is { } resume)
            {
                state = Resume(resume, optimizer, Config());
                if (_run is not null) _o.RunFolderOpened?.Invoke(_run.Path);
                return;
            }
            if (_o.WorkspacePath is not { } workspace) return;
            var config = Config();
            _run = RunDirectory.Create(workspace, _model.Spec.Name, DateTime.Now);
            _run.WriteConfig(config);
            _checkpoints = new CheckpointPolicy(_run, _o.EarlyStopping, _model, optimizer) { Config = config };
            _channel.Info(MessageSensitivity.None, $"Run folder: {_run.Path}");
            _o.RunFolderOpened?.Invoke(_run.Path);
        }

        // Loads the checkpoint after comparing its configuration with this run's, and continues its run folder.
        private TrainingState Resume(string resume, OptimizerHelper optimizer, JsonObject config)
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
            var state = header.State;
            foreach (var change in allowed) _channel.Info(MessageSensitivity.None, $"Resume: changed {change}");
            if (runFolder is not null && Path.GetFileName(checkpoint) == RunDirectory.PreviousCheckpointName) SetAsideReplacedLatest(runFolder);
            OpenResumedRunFolder(checkpoint, runFolder, header.MetricsRecords);
            if (_run is not null) RecordResume(config, checkpoint, state, allowed);
            _checkpoints = new CheckpointPolicy(_run, _o.EarlyStopping, _model, optimizer) { Config = config, LastGood = (Path.GetFullPath(checkpoint), state.GlobalStep) };
            _channel.Info(MessageSensitivity.None, $"Resuming from {checkpoint}: epoch {state.Epoch}, batch {state.BatchInEpoch}, step {state.GlobalStep}" +
                (_run is null ? "." : $"; run folder {_run.Path}."));
            return state;
        }

        private void OpenResumedRunFolder(string checkpoint, string? runFolder, long metricsRecords)
        {
            if (runFolder is not null)
            {
                try
                {
                    _run = RunDirectory.Open(runFolder, metricsRecords);
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
        }

        // config.json keeps when the run started and gains one entry per resume (from where, at which step, what changed).
        private void RecordResume(JsonObject config, string checkpoint, TrainingState state, List<string> allowed)
        {
            var old = _run!.ReadConfig();
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
            else if (_o.StartingWeightsPath is { } file) LoadWeightFile(file);
            else if (_o.Pretrained is { } source)
            {
                // The catalog's file: REGNET_WEIGHTS_DIR, the cache or a verified download; offline without it, the
                // FileNotFoundException says where to put it.
                string pretrainedPath = PretrainedWeights.GetFileAsync(_model.Spec.Name, source, _o.PretrainedOptions, _o.CancellationToken).GetAwaiter().GetResult();
                LoadWeightFile(pretrainedPath);
            }
        }

        // Any format RegNetWeights reads (Keras .h5, .pth/.pyth, safetensors, own format); a classifier of another size is
        // re-initialised, and the file's padding style (TensorFlow "same" for Keras) is set on the model.
        private void LoadWeightFile(string file)
        {
            var report = RegNetWeights.Load(_model, file, new WeightLoadOptions { Strict = true, ReinitializeClassifierOnMismatch = true, ClassifierSeed = _seed });
            _channel.Info(MessageSensitivity.None, $"Starting weights from {file}: {report}");
        }

        private void CopyWeightsFrom(RegNetModel from, string what)
        {
            // Everything but the classifier must fit exactly; a classifier of another size stays freshly initialised.
            bool sameHead = from.NumberOfClasses == _model.NumberOfClasses;
            var source = from.state_dict()
                .Where(kv => sameHead || !kv.Key.StartsWith(ClassifierPrefix, StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key, kv => kv.Value);
            var report = StateDictLoader.Load(_model, source, StateDictLayout.Timm, strict: false);
            if (report.Unexpected.Count > 0 || report.Mismatched.Count > 0 || report.Missing.Any(n => !n.StartsWith(ClassifierPrefix, StringComparison.Ordinal)))
                throw new ArgumentException($"The starting model does not match {_model.Spec.Name} apart from the classifier: {report}");
            _channel.Info(MessageSensitivity.None, $"Starting weights from {what}: {report}" +
                (sameHead ? "" : $" (classifier re-initialised: {from.NumberOfClasses} → {_model.NumberOfClasses} classes)"));
        }

        private const string ClassifierPrefix = "head.";

        // Frozen parts: no gradient, BatchNorm statistics kept (TrainingSession keeps them in eval mode).
        private void Freeze()
        {
            var frozen = new List<nn.Module>();
            if (_o.FreezeStem || _o.FreezeStages > 0) frozen.Add(_model.Stem);
            frozen.AddRange(_model.Stages.Take(_o.FreezeStages));
            foreach (var module in frozen)
                foreach (var p in module.parameters()) p.requires_grad = false;
            _frozen = frozen;
        }

        private List<nn.Module> _frozen = new();

        // The optimizer holds the trainable parameters, and the frozen ones too when they are unfrozen later (their
        // gradients stay empty until then, so the optimizer leaves them alone), in groups with learning-rate multipliers.
        private (OptimizerHelper, WeightDecay) CreateOptimizer()
        {
            bool unfreezesLater = _o.UnfreezeAfterEpochs is not null;
            var groups = ParameterGroups.Of(_model, p => p.requires_grad || unfreezesLater, _o.LayerDecay);
            _learningRateScales = groups.Select(g => g.LearningRateScale).ToArray();
            var decayed = groups.SelectMany(g => g.Parameters.Select(p => (Parameter: p, g.LearningRateScale)))
                .Where(x => !_o.ExcludeNormAndBiasFromWeightDecay || x.Parameter.dim() > 1);
            var decay = new WeightDecay(decayed, _o.WeightDecay, _o.WeightDecaySemantics);
            OptimizerHelper optimizer = _o.Optimizer switch
            {
                OptimizerKind.AdamW => optim.Adam(groups.Select(g => new Adam.ParamGroup(g.Parameters, _o.LearningRate * g.LearningRateScale,
                    _o.AdamBeta1, _o.AdamBeta2, _o.AdamEpsilon)), _o.LearningRate, _o.AdamBeta1, _o.AdamBeta2, _o.AdamEpsilon),
                OptimizerKind.Sgd => optim.SGD(groups.Select(g => new SGD.ParamGroup(g.Parameters, _o.LearningRate * g.LearningRateScale,
                    _o.Momentum, nesterov: _o.Nesterov)), _o.LearningRate, _o.Momentum, nesterov: _o.Nesterov),
                _ => throw new ArgumentOutOfRangeException(nameof(Options.Optimizer)),
            };
            return (optimizer, decay);
        }

        private double[] _learningRateScales = { 1.0 };
    }
}
