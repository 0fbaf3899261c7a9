using System.ComponentModel;
using Spectre.Console.Cli;

namespace RegNetML.Tool.Training;

/// <summary>
/// <c>regnet train</c>'s options. Every override is nullable: null means "the recipe's value", so a resumed run can
/// tell what was given on its command line from what it stored (<see cref="RunRecord"/>).
/// </summary>
public sealed class TrainSettings : CommandSettings
{
    [CommandArgument(0, "[data]")]
    [Description("Training images: a folder with one sub-folder per class, a CSV/TSV of path,label, or an ImageNet folder (train/<wnid>/*.JPEG, val/). Optional with --resume.")]
    public string? Data { get; set; }

    [CommandOption("--val <FOLDER|CSV>")]
    [Description("Validation images, in the same forms as the data.")]
    public string? Val { get; set; }

    [CommandOption("--val-fraction <F>")]
    [Description("Hold out this fraction of the training images for validation, in (0, 1).")]
    public double? ValFraction { get; set; }

    [CommandOption("--arch <NAME>")]
    [Description("Architecture: any zoo name (X002 … Y320; see 'regnet zoo'). Default X002.")]
    public string? Arch { get; set; }

    [CommandOption("--spec <JSON_FILE>")]
    [Description("A custom architecture: a JSON file {\"depth\", \"w0\", \"wa\", \"wm\", \"group_width\", \"bottleneck_ratio\", \"se_ratio\", \"rounding\", \"name\"}.")]
    public string? Spec { get; set; }

    [CommandOption("--recipe <RECIPE>")]
    [Description("Preset: keras (the per-model recipe of the Keras RegNets), pycls (the paper's SGD recipe), finetune (short, low lr). Default: the library's defaults.")]
    public string? Recipe { get; set; }

    [CommandOption("--weights <FILE|SOURCE>")]
    [Description("Starting weights: a file in any format regnet reads, or keras, timm, torchvision (published ImageNet weights of --arch; $REGNET_WEIGHTS_DIR, the cache, then a download; REGNET_OFFLINE=1 never downloads).")]
    public string? Weights { get; set; }

    [CommandOption("--freeze-stages <N>")]
    [Description("Freeze the stem and the first N stages (0–4).")]
    public int? FreezeStages { get; set; }

    [CommandOption("--unfreeze-after <EPOCHS>")]
    [Description("Fine-tuning's second phase: the parts frozen by --freeze-stages train too after this many epochs (best with --layer-decay).")]
    public int? UnfreezeAfter { get; set; }

    [CommandOption("--cached-views <K>")]
    [Description("With --freeze-stages and augmentation: keep K augmented views of each image's frozen-trunk output; epochs after the first K train from them without reading images.")]
    public int? CachedViews { get; set; }

    [CommandOption("--image-cache-mb <MIB>")]
    [Description("Without augmentation and without the frozen-trunk cache in use: keep the decoded images of the first epoch in memory, up to MIB (default 1024; 0: off), so later epochs read no image file.")]
    public int? ImageCacheMegabytes { get; set; }

    [CommandOption("--layer-decay <FACTOR>")]
    [Description("Layer-wise learning-rate decay in (0, 1] (timm's layer_decay): the classifier at the scheduled rate, the last stage × FACTOR, the one before × FACTOR², …")]
    public double? LayerDecay { get; set; }

    [CommandOption("--resume <RUN_FOLDER>")]
    [Description("Continue a run from its latest checkpoint; its stored options are reused and --epochs or --threads may change.")]
    public string? Resume { get; set; }

    [CommandOption("--workspace <DIR>")]
    [Description("Run folders are written to DIR/runs/<date-time>-<arch>/ (default: the current folder, so ./runs).")]
    public string? Workspace { get; set; }

    [CommandOption("--name <NAME>")]
    [Description("A name for the run, stored in its regnet.json.")]
    public string? Name { get; set; }

    [CommandOption("--seed <N>")]
    public int? Seed { get; set; }

    [CommandOption("--threads <N>")]
    [Description("libtorch threads (default: libtorch's choice).")]
    public int? Threads { get; set; }

    [CommandOption("--epochs <N>")]
    public int? Epochs { get; set; }

    [CommandOption("--batch-size <N>")]
    public int? BatchSize { get; set; }

    [CommandOption("--image-size <PIXELS>")]
    public int? ImageSize { get; set; }

    [CommandOption("--lr <LR>")]
    [Description("Peak learning rate, used as given (no scaling with the batch size).")]
    public double? Lr { get; set; }

    [CommandOption("--weight-decay <WD>")]
    public double? WeightDecay { get; set; }

    [CommandOption("--mixup <ALPHA>")]
    [Description("Mixup α (0: off).")]
    public double? Mixup { get; set; }

    [CommandOption("--area-factor <F>")]
    [Description("Smallest crop area of the inception crop, as a fraction of the image.")]
    public double? AreaFactor { get; set; }

    [CommandOption("--label-smoothing <EPS>")]
    public double? LabelSmoothing { get; set; }

    [CommandOption("--warmup-epochs <N>")]
    public double? WarmupEpochs { get; set; }
}
