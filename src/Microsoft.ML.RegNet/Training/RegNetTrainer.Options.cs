using Microsoft.ML.RegNet.Data.Mixing;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet;

/// <summary>Optimizer family.</summary>
public enum OptimizerKind
{
    /// <summary>Adam with weight decay applied separately (see <see cref="WeightDecaySemantics"/>).</summary>
    AdamW,
    /// <summary>SGD with momentum (pycls: Nesterov, momentum 0.9, coupled L2).</summary>
    Sgd,
}

public sealed partial class RegNetTrainer
{
    /// <summary>
    /// Everything the trainer does, as public fields in ML.NET style. The defaults are a sensible fine-tuning/small-data
    /// recipe; <see cref="KerasRecipe"/> gives the recipe that produced the Keras RegNets.
    /// </summary>
    public sealed class Options
    {
        /// <summary>Key-typed label column (put <c>MapValueToKey</c> before the trainer).</summary>
        public string LabelColumnName = "Label";
        /// <summary>Image column: <c>MLImage</c> from <c>LoadImages</c>, or encoded bytes from <c>LoadRawImageBytes</c>.</summary>
        public string ImageColumnName = "Image";
        /// <summary>Output: softmax probabilities, one per class, slot names = class names.</summary>
        public string ScoreColumnName = "Score";
        /// <summary>Output: the predicted class as a key of the label's key type.</summary>
        public string PredictedLabelColumnName = "PredictedLabel";

        /// <summary>Architecture name (<c>X002</c> … <c>Y320</c>, any spelling <see cref="RegNetSpec.FromName"/> accepts).</summary>
        public string Architecture = "X002";
        /// <summary>A custom architecture; when set it replaces <see cref="Architecture"/>.</summary>
        public RegNetSpec? Spec;
        /// <summary>Start each residual branch's last BN γ at zero.</summary>
        public bool ZeroInitLastBatchNorm;

        /// <summary>Side of the square network input, in pixels (224). At least 32, or the trainer's constructor throws <see cref="ArgumentException"/>.</summary>
        public int ImageSize = 224;
        /// <summary>Images per optimizer step (32). At least 1, or the trainer's constructor throws <see cref="ArgumentException"/>.</summary>
        public int BatchSize = 32;
        /// <summary>Epochs to train (10; fewer when early stopping stops). At least 1, or the trainer's constructor throws <see cref="ArgumentException"/>.</summary>
        public int MaxEpochs = 10;

        /// <summary>Optimizer: AdamW (default) or SGD with momentum.</summary>
        public OptimizerKind Optimizer = OptimizerKind.AdamW;
        /// <summary>AdamW's β₁, the decay of the gradient's running mean (0.9). Used only with <see cref="OptimizerKind.AdamW"/>.</summary>
        public double AdamBeta1 = 0.9;
        /// <summary>AdamW's β₂, the decay of the squared gradient's running mean (0.999). Used only with <see cref="OptimizerKind.AdamW"/>.</summary>
        public double AdamBeta2 = 0.999;
        /// <summary>AdamW's ε added to the denominator (1e-8). Used only with <see cref="OptimizerKind.AdamW"/>.</summary>
        public double AdamEpsilon = 1e-8;
        /// <summary>SGD momentum (0.9, as pycls). Used only with <see cref="OptimizerKind.Sgd"/>.</summary>
        public double Momentum = 0.9;
        /// <summary>Nesterov momentum for SGD (true, as pycls). Used only with <see cref="OptimizerKind.Sgd"/>.</summary>
        public bool Nesterov = true;

        /// <summary>Peak learning rate after warmup (1e-3), for <see cref="LearningRateReferenceBatchSize"/> images per step if that is set. Must be positive and finite, or the trainer's constructor throws <see cref="ArgumentException"/>.</summary>
        public double LearningRate = 1e-3;
        /// <summary>Linear scaling rule: when set, the learning rate used is LearningRate · BatchSize / this.</summary>
        public int? LearningRateReferenceBatchSize;
        /// <summary>Epochs (fractions allowed) over which the learning rate rises linearly from <see cref="WarmupFactor"/> · lr to lr (0: no warmup). Must be ≥ 0, or the trainer's constructor throws <see cref="ArgumentException"/>.</summary>
        public double WarmupEpochs = 0;
        /// <summary>Warmup starts at this fraction of the learning rate (pycls: 0.1).</summary>
        public double WarmupFactor = 0.1;
        /// <summary>Shape of the learning-rate curve after warmup (half cosine down to 0 at the end of <see cref="MaxEpochs"/>).</summary>
        public LearningRateScheduleKind Schedule = LearningRateScheduleKind.HalfCosine;
        /// <summary>Whether the learning rate changes every step (default) or once per epoch.</summary>
        public ScheduleGranularity ScheduleGranularity = ScheduleGranularity.PerStep;
        /// <summary>Epoch milestones of the step schedule.</summary>
        public int[] StepMilestones = Array.Empty<int>();
        /// <summary>Factor applied to the learning rate at each of <see cref="StepMilestones"/> (0.1) with the step schedule.</summary>
        public double StepGamma = 0.1;

        /// <summary>Weight decay coefficient (5e-5); what it multiplies depends on <see cref="WeightDecaySemantics"/>. Must be ≥ 0, or the trainer's constructor throws <see cref="ArgumentException"/>.</summary>
        public double WeightDecay = 5e-5;
        /// <summary>How <see cref="WeightDecay"/> is applied: PyTorch's lr-scaled decoupled decay (default), the constant shrink the Keras RegNets used, or L2 added to the gradient.</summary>
        public WeightDecaySemantics WeightDecaySemantics = WeightDecaySemantics.Decoupled;
        /// <summary>Exclude BatchNorm parameters and biases from weight decay (false; the Keras RegNets' trainer decayed them too).</summary>
        public bool ExcludeNormAndBiasFromWeightDecay;
        /// <summary>Label smoothing ε: targets become 1 − ε + ε/C for the true class and ε/C for the others (0: off). Must be in [0, 1), or the trainer's constructor throws <see cref="ArgumentException"/>.</summary>
        public double LabelSmoothing = 0;

        /// <summary>Training-time augmentation (inception crop with area factor, flip, PCA lighting).</summary>
        public AugmentationOptions Augmentation = AugmentationOptions.Training();
        /// <summary>Batch mixing: mixup α, CutMix α, partner choice.</summary>
        public MixingOptions Mixing = new();
        /// <summary>Input normalisation. Null (default): the one <see cref="Pretrained"/> weights were trained with (Keras: 1/255
        /// only; pycls, timm, torchvision: ImageNet mean/std), otherwise ImageNet mean/std. Set it to override.</summary>
        public ImageNormalization? Normalization;
        /// <summary>Evaluation centre-crop fraction (resize shorter side to ImageSize / CropFraction).</summary>
        public double CropFraction = 0.875;
        /// <summary>Shuffle the training data each epoch (deterministic per seed and epoch).</summary>
        public bool Shuffle = true;
        /// <summary>Rows held by the shuffle buffer (4096): larger mixes better and holds more images in memory.</summary>
        public int ShufflePoolSize = 4096;
        /// <summary>Rows whose image cannot be decoded: fail (naming the row) or skip and count.</summary>
        public BadImagePolicy BadImagePolicy = BadImagePolicy.FailOnBadImage;

        /// <summary>Data evaluated after every epoch.</summary>
        public IDataView? ValidationSet;
        /// <summary>When no validation set is given, hold out this fraction of the training data, in (0, 1) (null: none); otherwise the trainer's constructor throws <see cref="ArgumentException"/>.</summary>
        public double? ValidationFraction;
        /// <summary>Stop when the validation metric has not improved for a number of epochs (null: train all <see cref="MaxEpochs"/>). Needs a validation set or fraction.</summary>
        public EarlyStoppingOptions? EarlyStopping;

        /// <summary>
        /// Weights to start from, in any format <c>RegNetWeights</c> reads (Keras <c>.h5</c>, <c>torch.save</c> files, safetensors,
        /// the own format), a <c>model.zip</c> saved by <c>mlContext.Model.Save</c> (to train further from what was saved), or
        /// a checkpoint of this trainer. A classifier of another class count is re-initialised.
        /// </summary>
        public string? StartingWeightsPath;
        /// <summary>Start from the published weights of <see cref="Architecture"/> from this source (null: none), found through
        /// <see cref="PretrainedCatalog"/>: <c>$REGNET_WEIGHTS_DIR</c>, the cache, or a SHA-256-verified download
        /// (<see cref="PretrainedOptions"/>). Their preprocessing comes with them (Keras: 1/255 scaling and TensorFlow "same"
        /// padding; the others: ImageNet mean/std) unless <see cref="Normalization"/> is set; a classifier of another class
        /// count is re-initialised. Cannot be combined with <see cref="Spec"/>, <see cref="StartingWeightsPath"/> or <see cref="StartingModel"/>.</summary>
        public PretrainedSource? Pretrained;
        /// <summary>Where <see cref="Pretrained"/> files are looked for and how they are fetched (offline mode, mirror, cache,
        /// unverified sources); null: <see cref="RegNet.PretrainedOptions.Default"/>.</summary>
        public PretrainedOptions? PretrainedOptions;
        /// <summary>A trained transformer to start from (fine-tuning); its weights are copied.</summary>
        public RegNetTransformer? StartingModel;
        /// <summary>Freeze the stem (no gradient, BatchNorm statistics kept).</summary>
        public bool FreezeStem;
        /// <summary>Freeze the stem and the first N stages (0…4; 0: none). Outside 0…4 the trainer's constructor throws <see cref="ArgumentException"/>.</summary>
        public int FreezeStages;

        /// <summary>Fine-tuning's second phase: after this many epochs the parts frozen by <see cref="FreezeStem"/> and
        /// <see cref="FreezeStages"/> train too, for the remaining epochs (as fastai's <c>fine_tune</c> unfreezes after its
        /// frozen epochs, and Keras users unfreeze and fit again), best with <see cref="LayerDecay"/> so they move less than the
        /// classifier. The frozen epochs use the frozen-trunk cache (<see cref="CacheFrozenTrunk"/>); from the unfreezing on,
        /// BatchNorm layers of the unfrozen parts update their statistics. Null (default): frozen parts stay frozen. At least
        /// 1, and something must be frozen, or the trainer's constructor throws <see cref="ArgumentException"/>.</summary>
        public int? UnfreezeAfterEpochs;
        /// <summary>Layer-wise learning-rate decay (timm's <c>layer_decay</c>), in (0, 1]: the classifier trains at the scheduled
        /// rate, the last stage at LayerDecay times it, the stage before at LayerDecay², and so on to the stem at LayerDecay⁵
        /// (for four stages), so that the pretrained features nearest the input change least. Decoupled weight decay follows
        /// each parameter's own rate. Null (default): every parameter at the scheduled rate. Outside (0, 1] the trainer's
        /// constructor throws <see cref="ArgumentException"/>.</summary>
        public double? LayerDecay;

        /// <summary>With frozen parts (<see cref="FreezeStem"/> or <see cref="FreezeStages"/>), no mixing and one process, keep
        /// the frozen part's output of each image and train later epochs on it, without reading, decoding or running the
        /// frozen part again (true). Without training augmentation (<c>Augmentation.Train</c> false) the first epoch's
        /// outputs are kept and the results are those of training without the cache. With training augmentation the cache
        /// is used only when <see cref="CachedAugmentedViews"/> is above 0. The validation set is not cached.</summary>
        public bool CacheFrozenTrunk = true;
        /// <summary>Memory for <see cref="CacheFrozenTrunk"/>, in MiB (1024), for all cached views together; outputs beyond it go
        /// to a temporary file, deleted when Fit ends.</summary>
        public int FrozenTrunkCacheMegabytes = 1024;
        /// <summary>Without the frozen trunk cache in use (nothing frozen, after <see cref="UnfreezeAfterEpochs"/>, or
        /// <see cref="CacheFrozenTrunk"/> false), without training augmentation and in one process: keep the preprocessed
        /// images of the first epoch in memory, up to this many MiB (1024), and train later epochs on them without reading or
        /// decoding an image file again (Keras' <c>Dataset.cache()</c>). Training computes the same as without it (mixing
        /// still draws per epoch). When the images need more, nothing is kept (logged) and every epoch reads the files.
        /// 0 turns it off; negative: the trainer's constructor throws <see cref="ArgumentException"/>. The validation set is
        /// not cached. In any new run whose first epoch of images fits this budget, that epoch is decoded ahead in full
        /// while the model and its weights are set up, instead of a few batches ahead beside the first steps.</summary>
        public int DecodedImageCacheMegabytes = 1024;
        /// <summary>With training augmentation and the frozen trunk cache in use (<see cref="CacheFrozenTrunk"/>, frozen parts,
        /// no mixing, one process): K augmented views of each image to keep (0, the default: none, every epoch reads and
        /// augments the images). Epochs 0…K-1 read and augment the images as usual, epoch v's augmentation being view v, and
        /// keep the frozen part's outputs; every later epoch e trains on view e mod K of each row, in epoch e's row order,
        /// without reading an image. Training thus sees K augmentations of each image instead of one per epoch. An epoch
        /// whose view is not (completely) cached, e.g. after a resume (the cache lives for one Fit), reads the images in its
        /// own order with its view's augmentation and fills that view, so a resumed run trains as the uninterrupted one.
        /// Ignored when the cache is not in use, and without training augmentation (one view suffices). Negative: the
        /// trainer's constructor throws <see cref="ArgumentException"/>.</summary>
        public int CachedAugmentedViews;
        // Tests: everything CachedAugmentedViews does except the cache (every epoch reads the images, with its view's
        // augmentation), the computation the cache must reproduce.
        internal bool ReadCachedViewsFromImages;

        /// <summary>Folder under which each Fit writes runs/&lt;yyyyMMdd-HHmmss&gt;-&lt;arch&gt;/ (null: no run folder).</summary>
        public string? WorkspacePath;
        /// <summary>Continue a run: a run folder (its latest checkpoint) or a checkpoint file. A checkpoint inside a run
        /// folder's checkpoints/ continues that run folder. Options that would change the resumed training (architecture,
        /// batch size, optimizer, data, …) must match the run's config.json; MaxEpochs, threads, logging and checkpoint
        /// cadence may change and are logged.</summary>
        public string? ResumeFrom;
        /// <summary>Resume from the run's checkpoints/previous.ckpt (the checkpoint latest.ckpt replaced) instead of
        /// latest.ckpt, e.g. after latest.ckpt was refused as damaged. latest.ckpt is then kept as latest.replaced.ckpt
        /// (as it is when ResumeFrom names previous.ckpt itself).</summary>
        public bool ResumeFromPreviousCheckpoint;
        /// <summary>Write the latest checkpoint every N steps as well as at the end of every epoch (0: epochs only).</summary>
        public int CheckpointEveryNSteps;

        /// <summary>Seed of initialisation, data order and augmentation; null = the MLContext seed, or 1.</summary>
        public int? Seed;
        /// <summary>libtorch intra-op threads (null: libtorch's default). Process-wide: <c>torch.set_num_threads</c> applies to
        /// every Fit and model in the process, not to this Fit alone.</summary>
        public int? NumberOfThreads;
        /// <summary>The libtorch device to train and score on: <c>"cpu"</c>, <c>"cuda"</c> or <c>"cuda:N"</c>. Null (the default)
        /// follows ML.NET's convention: <c>MLContext.GpuDeviceId</c> when set, else the CPU. A CUDA device this process cannot
        /// use (a CPU build of libtorch, no GPU) fails <c>Fit</c> with a message, or trains on the CPU with a logged warning
        /// when <c>MLContext.FallbackToCpu</c> is true. CUDA needs a CUDA build of libtorch (README, "Devices").</summary>
        public string? Device;
        /// <summary>Data-parallel training over MPI processes (<c>mpirun -np N dotnet app.dll</c>; docs/data_parallel.md). Auto
        /// (default): on when launched by an MPI launcher with more than one process. Each rank trains <see cref="BatchSize"/>
        /// images per step on its own share of the rows, gradients are averaged over the ranks, and only rank 0 logs, calls
        /// <see cref="MetricsCallback"/> and writes the run folder; <see cref="NumberOfThreads"/> defaults to the cores divided
        /// by the ranks on the machine, and <see cref="LearningRateReferenceBatchSize"/> scales with BatchSize × ranks.</summary>
        public DataParallelMode DataParallel = DataParallelMode.Auto;
        /// <summary>Data-parallel only: BatchNorm layers in training mode normalise with the statistics of the whole global batch
        /// (every rank's images; one small allreduce per layer in the forward and one in the backward pass) instead of each rank's
        /// own, as PyTorch's SyncBatchNorm does, so that N ranks × <see cref="BatchSize"/> train like one process with N ×
        /// BatchSize. Worth it when the per-rank batch is small; it costs two latency-bound allreduces per BatchNorm layer.</summary>
        public bool SyncBatchNorm;
        /// <summary>Threads that decode and augment images while the model trains.</summary>
        public int WorkerThreads = Math.Max(1, Environment.ProcessorCount);

        /// <summary>Called (on rank 0) with the run folder once Fit has created it, or reopened it to resume, before the first
        /// step: a place for files of the caller's own beside config.json, there even if the process is killed later.</summary>
        public Action<string>? RunFolderOpened;
        /// <summary>Receives metrics every <see cref="LogEveryNSteps"/> steps and at the end of every epoch.</summary>
        public Action<RegNetTrainingMetrics>? MetricsCallback;
        /// <summary>Steps between step metrics (50) sent to <see cref="MetricsCallback"/>, the run folder and the log. Must be at least 1, or the trainer's constructor throws <see cref="ArgumentException"/>.</summary>
        public int LogEveryNSteps = 50;
        /// <summary>Stops training cleanly; Fit then returns the model as it was after the last completed step (and writes
        /// latest.ckpt with a workspace). Already cancelled when Fit starts: Fit throws <see cref="OperationCanceledException"/>.</summary>
        public CancellationToken CancellationToken;

        /// <summary>The recipe behind the Keras RegNets: AdamW with TFA-style constant decay,
        /// lr 0.001 per 128 images, 5 warmup epochs from 0.1, per-epoch half cosine, the model's area factor and mixup,
        /// 1/255 scaling only.</summary>
        public static Options KerasRecipe(string architecture, int maxEpochs = 100)
        {
            var spec = RegNetSpec.FromName(architecture);
            var (areaFactor, mixup, decay) = KerasRecipes[spec.Name];
            return new Options
            {
                Architecture = spec.Name,
                MaxEpochs = maxEpochs,
                LearningRate = 0.001,
                LearningRateReferenceBatchSize = 128,
                AdamEpsilon = 1e-7,
                WarmupEpochs = 5,
                WarmupFactor = 0.1,
                Schedule = LearningRateScheduleKind.HalfCosine,
                ScheduleGranularity = ScheduleGranularity.PerEpoch,
                WeightDecay = decay,
                WeightDecaySemantics = WeightDecaySemantics.DecoupledConstant,
                Augmentation = AugmentationOptions.Training(areaFactor),
                Mixing = new MixingOptions { MixupAlpha = mixup, Partner = MixupPartner.Reversed },
                Normalization = ImageNormalization.UnitScale,
            };
        }

        // (area factor, mixup α, weight decay) per model, from the Keras author's table.
        private static readonly IReadOnlyDictionary<string, (double AreaFactor, double Mixup, double Decay)> KerasRecipes =
            new Dictionary<string, (double, double, double)>
            {
                ["RegNetX002"] = (0.25, 0.0, 5e-5), ["RegNetX004"] = (0.08, 0.0, 5e-5), ["RegNetX006"] = (0.08, 0.0, 5e-5),
                ["RegNetX008"] = (0.08, 0.0, 5e-5), ["RegNetX016"] = (0.08, 0.2, 5e-5), ["RegNetX032"] = (0.08, 0.2, 5e-5),
                ["RegNetX040"] = (0.08, 0.2, 5e-5), ["RegNetX064"] = (0.08, 0.3, 5e-5), ["RegNetX080"] = (0.08, 0.3, 5e-5),
                ["RegNetX120"] = (0.08, 0.4, 5e-5), ["RegNetX160"] = (0.08, 0.4, 5e-5), ["RegNetX320"] = (0.08, 0.4, 5e-5),
                ["RegNetY002"] = (0.16, 0.2, 1e-5), ["RegNetY004"] = (0.16, 0.2, 1e-5), ["RegNetY006"] = (0.16, 0.2, 5e-5),
                ["RegNetY008"] = (0.16, 0.2, 5e-5), ["RegNetY016"] = (0.08, 0.2, 5e-5), ["RegNetY032"] = (0.08, 0.2, 5e-5),
                ["RegNetY040"] = (0.08, 0.2, 5e-5), ["RegNetY064"] = (0.08, 0.3, 5e-5), ["RegNetY080"] = (0.08, 0.3, 5e-5),
                ["RegNetY120"] = (0.08, 0.4, 5e-5), ["RegNetY160"] = (0.08, 0.4, 5e-5), ["RegNetY320"] = (0.08, 0.4, 5e-5),
            };
    }
}
