using Microsoft.ML.RegNet;

namespace RegNetML.Tool.Training;

/// <summary>The <c>--recipe</c> presets as trainer options, then every option given on the command line on top.</summary>
internal static class Recipes
{
    public static readonly string[] Names = { "default", "keras", "pycls", "finetune" };

    public static RegNetTrainer.Options Build(TrainSettings s, RegNetSpec spec)
    {
        var options = Preset(s.Recipe ?? "default", spec);
        options.Spec = spec;
        options.Architecture = spec.Name;
        if (s.Epochs is { } epochs) options.MaxEpochs = epochs;
        if (s.BatchSize is { } batch) options.BatchSize = batch;
        if (s.ImageSize is { } size) options.ImageSize = size;
        if (s.Lr is { } lr) (options.LearningRate, options.LearningRateReferenceBatchSize) = (lr, null);
        if (s.WeightDecay is { } decay) options.WeightDecay = decay;
        if (s.Mixup is { } mixup) options.Mixing = options.Mixing with { MixupAlpha = mixup };
        if (s.AreaFactor is { } area) options.Augmentation = options.Augmentation with { AreaFactor = area };
        if (s.LabelSmoothing is { } smoothing) options.LabelSmoothing = smoothing;
        if (s.WarmupEpochs is { } warmup) options.WarmupEpochs = warmup;
        if (s.FreezeStages is { } frozen) options.FreezeStages = frozen;
        if (s.UnfreezeAfter is { } unfreeze) options.UnfreezeAfterEpochs = unfreeze;
        if (s.LayerDecay is { } layerDecay) options.LayerDecay = layerDecay;
        if (s.CachedViews is { } views) options.CachedAugmentedViews = views;
        if (s.ImageCacheMegabytes is { } imageCache) options.DecodedImageCacheMegabytes = imageCache;
        if (s.ValFraction is { } fraction) options.ValidationFraction = fraction;
        options.Seed = s.Seed ?? 1;
        options.NumberOfThreads = s.Threads;
        return options;
    }

    private static RegNetTrainer.Options Preset(string recipe, RegNetSpec spec) => recipe.ToLowerInvariant() switch
    {
        "default" => new RegNetTrainer.Options(),
        "keras" => RegNetZoo.TryFind(spec.Name, out _)
            ? RegNetTrainer.Options.KerasRecipe(spec.Name)
            : throw new UserError($"--recipe keras has values for the 24 zoo models only, not '{spec.Name}'. Pick a zoo --arch, or another recipe with your own options."),
        "pycls" => Pycls(),
        "finetune" => Finetune(),
        _ => throw new UserError($"Unknown recipe '{recipe}'. Use one of: {string.Join(", ", Names)}."),
    };

    /// <summary>The paper's recipe: SGD (Nesterov, momentum 0.9), lr 0.1 per 128 images, 5 warmup epochs from 0.1,
    /// half cosine set once per epoch, coupled L2 5e-5 on every parameter, inception crop from 8 %, 100 epochs.</summary>
    private static RegNetTrainer.Options Pycls() => new()
    {
        Optimizer = OptimizerKind.Sgd, Momentum = 0.9, Nesterov = true,
        LearningRate = 0.1, LearningRateReferenceBatchSize = 128,
        WarmupEpochs = 5, WarmupFactor = 0.1,
        Schedule = LearningRateScheduleKind.HalfCosine, ScheduleGranularity = ScheduleGranularity.PerEpoch,
        WeightDecay = 5e-5, WeightDecaySemantics = WeightDecaySemantics.CoupledL2,
        Augmentation = AugmentationOptions.Training(0.08),
        MaxEpochs = 100,
    };

    /// <summary>Starting from pretrained weights: few epochs, a low learning rate, gentle crops, no mixing.</summary>
    private static RegNetTrainer.Options Finetune() => new()
    {
        LearningRate = 1e-4, WarmupEpochs = 1, WarmupFactor = 0.1,
        WeightDecay = 1e-4, Augmentation = AugmentationOptions.Training(0.25),
        MaxEpochs = 10,
    };
}
