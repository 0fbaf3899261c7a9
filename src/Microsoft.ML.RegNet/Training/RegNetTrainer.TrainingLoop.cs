using Microsoft.ML.RegNet.Data.Mixing;
using Microsoft.ML.RegNet.Data.MLNet;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Distributed;
using Microsoft.ML.Runtime;
using TorchSharp.Modules;
using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet;

public sealed partial class RegNetTrainer
{
    /// <summary>One Fit: the model, optimizer, schedule, data pipelines and run folder.</summary>
    private sealed partial class TrainingLoop
    {
        private readonly RegNetTrainer _trainer;
        private readonly Options _o;
        private readonly Func<RegNetModel> _newModel;
        private RegNetModel _model = null!; // built by Run, while the first epoch decodes
        private readonly InputColumns _columns;
        private readonly int _seed;
        private readonly IChannel _channel;
        private RunDirectory? _run;
        private CheckpointPolicy _checkpoints = null!;
        private int _stepsPerEpoch;
        private RegNetTrainingMetrics? _lastTrain;
        private RegNetTrainingMetrics? _lastValidation;
        private string _stopReason = "completed";
        private readonly DataParallel? _parallel;
        private SyncBatchNorm? _syncBatchNorm;

        public TrainingLoop(RegNetTrainer trainer, Func<RegNetModel> newModel, InputColumns columns, int seed, IChannel channel, DataParallel? parallel = null)
        {
            _parallel = parallel;
            _trainer = trainer;
            _o = trainer.TrainerOptions;
            _newModel = newModel;
            _columns = columns;
            _seed = seed;
            _channel = channel;
        }

        public string? RunPath => _run?.Path;

        /// <summary>The network Run built and trained; null if Run failed before building it.</summary>
        public RegNetModel? Model => _model;

        public string Summary => $"{_stopReason}; last train {_lastTrain}; last validation {(object?)_lastValidation ?? "none"}" +
                                 (_run is null ? "" : $"; run folder {_run.Path}");

        public void Run(IDataView train, IDataView? validation)
        {
            var trainPipeline = new ImageBatchPipeline(new ImageBatchPipelineOptions
            {
                ImageColumnName = _o.ImageColumnName, LabelColumnName = _o.LabelColumnName, BatchSize = _o.BatchSize, ImageSize = _o.ImageSize,
                Augmentation = _o.Augmentation, Normalization = NormalizationOf(_o), Seed = _seed, WorkerThreads = _o.WorkerThreads,
                Shuffle = _o.Shuffle, ShufflePoolSize = _o.ShufflePoolSize, DropLast = false, BadImagePolicy = _o.BadImagePolicy,
                Shard = Shard(pad: true),
            });
            // Validation sees the evaluation transform that scoring and the saved model use: its ML.NET steps on the view.
            var evalPipeline = new ImageBatchPipeline(trainPipeline.Options with
            {
                ImageColumnName = EvaluationPreprocessing.ResizedColumnName, Augmentation = AugmentationOptions.Evaluation(_o.CropFraction), Shuffle = false,
                Shard = Shard(pad: false),
            });
            if (validation is not null)
                validation = EvaluationPreprocessing.Apply(validation, new EvaluationCrop(_o.ImageSize, _o.CropFraction), _o.ImageColumnName, _columns.ImageIsBytes);
            _inputCache = CreateInputCache();
            try
            {
                _trainRows = CountRows(train);
                // A new run's first epoch reads from its start: its first batches decode while the weights load.
                if (_o.ResumeFrom is null) _firstEpoch = trainPipeline.Start(train, 0, 0, ReadCancellation, AugmentationEpoch(0), FirstEpochReadAhead(trainPipeline));
                _model = _newModel();
                // Data-parallel: rank 0 loads (starting weights or the checkpoint) and broadcasts.
                if (_o.ResumeFrom is null) { if (IsRoot) LoadStartingWeights(); }
                else if (_o.StartingWeightsPath is not null || _o.StartingModel is not null)
                    _channel.Info(MessageSensitivity.None, "Resuming: the starting weights are not loaded, the checkpoint's weights are.");
                Freeze();
                var (optimizer, decay) = CreateOptimizer();
                using var _ = optimizer;
                Train(train, validation, optimizer, decay, trainPipeline, evalPipeline);
            }
            finally
            {
                _firstEpoch?.Dispose();
                _inputCache?.Dispose();
                if (trainPipeline.BadImagesSkipped > 0)
                    _channel.Warning(MessageSensitivity.None, $"{trainPipeline.BadImagesSkipped} training images were unreadable or could not be decoded and were skipped: {trainPipeline.DescribeBadRows()}");
            }
        }

        private void Train(IDataView train, IDataView? validation, OptimizerHelper optimizer, WeightDecay decay, ImageBatchPipeline trainPipeline,
            ImageBatchPipeline evalPipeline)
        {
            try
            {
                var (session, schedule) = StartSession(optimizer, decay);
                using var ownedSession = session; // frees its flat optimizer buffers; the model keeps its weights
                RunEpochs(train, validation, session, schedule, trainPipeline, evalPipeline);
                _run?.End(_stopReason == "cancelled" ? RegNetRunStatus.Interrupted : RegNetRunStatus.Finished, _stopReason);
                if (_parallel is { GradientReductions: > 0 } p)
                    _channel.Info(MessageSensitivity.None, $"Data-parallel over {p.Size} ranks, per step on average: gradient allreduce {p.GradientCommunication.TotalMilliseconds / p.GradientReductions:F2} ms " +
                        $"after waiting {p.GradientWaiting.TotalMilliseconds / p.GradientReductions:F2} ms for the slowest rank" +
                        (_syncBatchNorm is { } sync ? $", SyncBatchNorm statistics {sync.Communication.TotalMilliseconds / p.GradientReductions:F2} ms per step." : "."));
            }
            catch (Exception e)
            {
                _run?.EndAfterError(e);
                throw;
            }
            finally
            {
                _model.SetTrainingNormalization(null); // the returned model normalises on its own
                _model.FoldFrozenNormalization(null);
                _run?.Dispose();
            }
        }

        // The run folder (new or resumed), the schedule, the session and the metric sinks.
        private (TrainingSession Session, LearningRateSchedule Schedule) StartSession(OptimizerHelper optimizer, WeightDecay decay)
        {
            var mixer = new BatchMixer(_o.Mixing, _columns.NumberOfClasses, _o.LabelSmoothing);
            // Data-parallel: the batch of one step is BatchSize on every rank.
            double lrScale = _o.LearningRateReferenceBatchSize is { } reference ? (double)_o.BatchSize * (_parallel?.Size ?? 1) / reference : 1.0;
            var state = new TrainingState(0, 0, 0, CheckpointPolicy.InitialBest(_o.EarlyStopping), 0, _model.Spec.ToJson(), _columns.NumberOfClasses);
            long rows = _trainRows;
            long rankRows = Shard(pad: true)?.RowsOf(rows) ?? rows;
            _stepsPerEpoch = (int)((rankRows + _o.BatchSize - 1) / _o.BatchSize);
            OpenRunFolder(ref state, optimizer, rows);
            if (_parallel is not null) state = SynchronizeStart(state, optimizer);
            if (state.GlobalStep == 0 && StopRequested())
            {
                _run?.Dispose();
                // Data-parallel, every rank throws here together (StopRequested agreed), including those whose own token is not cancelled.
                throw new OperationCanceledException("Training was cancelled before its first step.", _o.CancellationToken);
            }
            var schedule = new LearningRateSchedule(_o.LearningRate * lrScale, _o.MaxEpochs, _stepsPerEpoch, _o.Schedule, _o.ScheduleGranularity,
                _o.WarmupEpochs, _o.WarmupFactor, _o.StepMilestones, _o.StepGamma);
            _sinks = new List<IMetricsSink>();
            if (_run is not null) _sinks.Add(_run);
            if (_o.MetricsCallback is { } callback && IsRoot) _sinks.Add(new DelegateMetricsSink(callback));
            if (IsRoot) _sinks.Add(new DelegateMetricsSink(m => _channel.Info(MessageSensitivity.None, m.ToString())));
            // After the weights are final (loaded, resumed, broadcast): the frozen part's BatchNorm folded into its convolutions.
            _model.FoldFrozenNormalization(TrunkStages);
            var session = new TrainingSession(_model, optimizer, decay, schedule, mixer, _seed, _frozen, state, TrunkStages, _learningRateScales);
            if (_parallel is { } parallel)
            {
                _trainable = _model.parameters().Where(p => p.requires_grad).ToList();
                session.ReduceGradientsWith(() => parallel.AverageGradients(_trainable));
                session.ReduceMetrics = acc => acc.Reduce(parallel.Sum);
                if (_o.SyncBatchNorm)
                {
                    _syncBatchNorm = new SyncBatchNorm(parallel.World);
                    _model.SetTrainingNormalization(_syncBatchNorm.Forward);
                }
            }
            return (session, schedule);
        }

        private void RunEpochs(IDataView train, IDataView? validation, TrainingSession session, LearningRateSchedule schedule,
            ImageBatchPipeline trainPipeline, ImageBatchPipeline evalPipeline)
        {
            for (int epoch = session.State.Epoch; epoch < _o.MaxEpochs; epoch++)
            {
                _channel.Trace(MessageSensitivity.None, $"Starting epoch {epoch}");
                if (epoch >= _o.UnfreezeAfterEpochs && session.HasFrozenParts) Unfreeze(session, epoch);
                if (!TrainEpoch(train, session, trainPipeline))
                {
                    _stopReason = "cancelled";
                    _channel.Warning(MessageSensitivity.None, $"Training cancelled in epoch {epoch} after {session.State.GlobalStep} steps; returning the current weights.");
                    return;
                }
                session.State = session.State with { Epoch = epoch + 1, BatchInEpoch = 0 };
                _parallel?.BroadcastBuffers(_model);
                if (validation is not null)
                {
                    var metrics = session.Evaluate(evalPipeline, validation, epoch, session.State.GlobalStep, schedule.At(epoch, _stepsPerEpoch), ReadCancellation);
                    _lastValidation = metrics;
                    Report(metrics);
                    session.State = _checkpoints.AfterValidation(session.State, metrics);
                    FaultPoints.Hit("epoch:validated");
                }
                _checkpoints.SaveLatest(session.State);
                _run?.PlotCurves();
                _run?.Heartbeat();
                if (_checkpoints.StopReason(session.State, epoch) is { } reason)
                {
                    _stopReason = reason;
                    _channel.Info(MessageSensitivity.None, _stopReason);
                    return;
                }
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
            using var batches = EpochBatches(train, session, pipeline, epoch, skipBatches).GetEnumerator();
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
                    if (StopRequested()) return SaveOnCancel(session.State);
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
                        Globalize(window);
                        _lastTrain = window.ToMetrics(MetricsPhase.TrainSteps, epoch, state.GlobalStep, lr);
                        Report(_lastTrain);
                        window = new MetricsAccumulator();
                    }
                    // After an epoch's last step the epoch-end checkpoint follows; writing both would make previous.ckpt a copy of latest.
                    if (_o.CheckpointEveryNSteps > 0 && state.GlobalStep % _o.CheckpointEveryNSteps == 0 && state.BatchInEpoch < _stepsPerEpoch)
                    {
                        _parallel?.BroadcastBuffers(_model);
                        _checkpoints.SaveLatest(state);
                    }
                    FaultPoints.Hit("step");
                }
            }
            if (StopRequested()) return SaveOnCancel(session.State);
            // Resumed from a checkpoint written after the epoch's last step: nothing of the epoch is left to train.
            if (whole.Images == 0 && skipBatches > 0 && skipBatches >= _stepsPerEpoch) return true;
            if (whole.Images == 0)
                throw new InvalidOperationException(epoch == 0 && skipBatches == 0
                    ? "The training data is empty (no row had a decodable image and a label)."
                    : $"Epoch {epoch} produced no batches.");
            if (skipBatches == 0) CompleteInputCache(session, epoch);
            Globalize(whole);
            _lastTrain = whole.ToMetrics(MetricsPhase.TrainEpoch, epoch, session.State.GlobalStep, lr);
            Report(_lastTrain);
            return true;
        }

        private bool SaveOnCancel(TrainingState state)
        {
            _parallel?.BroadcastBuffers(_model);
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

    }
}
