using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microsoft.ML.RegNet.Training;

/// <summary>The resolved options of a run, for config.json and for checking what a resume continues.</summary>
internal static class TrainerConfig
{
    public static IReadOnlyDictionary<string, object?> Describe(RegNetTrainer.Options o, RegNetSpec spec, InputColumns columns, int seed, long? trainingRows = null)
    {
        var n = RegNetTrainer.NormalizationOf(o);
        var config = new SortedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["architecture"] = spec.Name,
            ["spec"] = spec.ToJsonObject(),
            ["stages"] = new { depths = spec.StageDepths, widths = spec.StageWidths, group_widths = spec.StageGroupWidths },
            ["parameters"] = spec.ParameterCount(columns.NumberOfClasses),
            ["classes"] = columns.ClassNames,
            ["seed"] = seed,
            ["started"] = DateTime.Now.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            ["torch_threads"] = TorchSharp.torch.get_num_threads(),
            ["convolution_self_test"] = TorchRuntime.ConvolutionSelfTest,
            ["native_allocator"] = TorchRuntime.NativeAllocator,
            ["augmentation"] = o.Augmentation,
            ["mixing"] = o.Mixing,
            ["normalization"] = new { n.Scale, n.Mean, n.Std, Order = n.Order.ToString() },
        };
        if (trainingRows is { } rows) config["training_rows"] = rows;
        foreach (var field in typeof(RegNetTrainer.Options).GetFields())
            if (Recorded(field, field.GetValue(o)) is { } value) config[field.Name] = value;
        config["HasValidationSet"] = o.ValidationSet is not null;
        return config;
    }

    // Through text, so that numbers compare the way they read back from a file.
    public static JsonObject ToJson(IReadOnlyDictionary<string, object?> config) => (JsonObject)JsonNode.Parse(JsonSerializer.Serialize(config))!;

    // What may change between a run and its resume without changing what the resumed steps compute (or, for MaxEpochs
    // and early stopping, only how long it goes on). Everything else must match. "Seed" and "Architecture" are compared
    // through their resolved forms "seed", "architecture" and "spec".
    private static readonly HashSet<string> SafeToChange = new(StringComparer.Ordinal)
    {
        nameof(RegNetTrainer.Options.MaxEpochs), nameof(RegNetTrainer.Options.WorkerThreads), nameof(RegNetTrainer.Options.NumberOfThreads),
        nameof(RegNetTrainer.Options.LogEveryNSteps), nameof(RegNetTrainer.Options.CheckpointEveryNSteps), nameof(RegNetTrainer.Options.WorkspacePath),
        nameof(RegNetTrainer.Options.ResumeFrom), nameof(RegNetTrainer.Options.ResumeFromPreviousCheckpoint), nameof(RegNetTrainer.Options.StartingWeightsPath),
        nameof(RegNetTrainer.Options.Pretrained), nameof(RegNetTrainer.Options.CacheFrozenTrunk), nameof(RegNetTrainer.Options.FrozenTrunkCacheMegabytes),
        nameof(RegNetTrainer.Options.DecodedImageCacheMegabytes),
        nameof(RegNetTrainer.Options.EarlyStopping), nameof(RegNetTrainer.Options.LabelColumnName), nameof(RegNetTrainer.Options.ImageColumnName),
        nameof(RegNetTrainer.Options.ScoreColumnName), nameof(RegNetTrainer.Options.PredictedLabelColumnName),
        nameof(RegNetTrainer.Options.Seed), nameof(RegNetTrainer.Options.Architecture), nameof(RegNetTrainer.Options.DataParallel),
        "HasValidationSet", "torch_threads", "convolution_self_test", "native_allocator",
    };

    // Differ on every resume; not worth a line.
    private static readonly HashSet<string> NotCompared = new(StringComparer.Ordinal) { "started", "resumes" };

    /// <summary>Differences between the configuration a checkpoint was trained with and the one resuming it: those that
    /// would change the resumed training (refused) and those that may change (logged).</summary>
    public static (List<string> Refused, List<string> Allowed) Compare(JsonObject then, JsonObject now)
    {
        var refused = new List<string>();
        var allowed = new List<string>();
        foreach (var key in then.Select(kv => kv.Key).Union(now.Select(kv => kv.Key)).Order(StringComparer.Ordinal))
        {
            // A key only one side has is a null option, or an option added or removed between versions: a run written before
            // an option existed trained with its default, so a missing key compares as that default, and otherwise as null.
            if (!then.TryGetPropertyValue(key, out var a)) a = DefaultOf(key);
            now.TryGetPropertyValue(key, out var b);
            if (NotCompared.Contains(key) || JsonNode.DeepEquals(a, b)) continue;
            string line = $"{key}: {Show(a)} → {Show(b)}";
            bool safe = key switch
            {
                // Patience and MinDelta may change; the metric may not (the checkpoint's best value is in its units).
                nameof(RegNetTrainer.Options.EarlyStopping) => WatchedMetric(a) == WatchedMetric(b),
                // With augmented views the cache decides which augmentation each epoch sees.
                nameof(RegNetTrainer.Options.CacheFrozenTrunk) => !KeepsAugmentedViews(then) && !KeepsAugmentedViews(now),
                _ => SafeToChange.Contains(key),
            };
            (safe ? allowed : refused).Add(line);
        }
        return (refused, allowed);
    }

    private static readonly RegNetTrainer.Options Defaults = new();

    private static JsonNode? DefaultOf(string key) =>
        typeof(RegNetTrainer.Options).GetField(key) is { } field && Recorded(field, field.GetValue(Defaults)) is { } value
            ? JsonSerializer.SerializeToNode(value) : null;

    // What config.json records for an option field: its value (enums by name), or null for those it leaves out (null
    // options, data, callbacks, objects, and the ones recorded in their own entries above).
    private static object? Recorded(System.Reflection.FieldInfo field, object? value)
    {
        if (value is null || value is IDataView || value is Delegate || value is CancellationToken || value is RegNetSpec
            || value is RegNetTransformer || value is PretrainedOptions || field.Name is nameof(RegNetTrainer.Options.Augmentation) or nameof(RegNetTrainer.Options.Mixing) or nameof(RegNetTrainer.Options.Normalization))
            return null;
        return value is Enum ? value.ToString() : value;
    }

    private static bool KeepsAugmentedViews(JsonObject config) =>
        config[nameof(RegNetTrainer.Options.CachedAugmentedViews)]?.GetValue<int>() > 0 && config["augmentation"]?["Train"]?.GetValue<bool>() == true;

    // No early stopping: the best checkpoint follows validation accuracy.
    private static string WatchedMetric(JsonNode? earlyStopping) =>
        earlyStopping?[nameof(EarlyStoppingOptions.Metric)]?.ToJsonString() ?? ((int)EarlyStoppingMetric.ValidationAccuracy).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string Show(JsonNode? node)
    {
        string text = node?.ToJsonString() ?? "(not set)";
        return text.Length > 200 ? text[..200] + "…" : text;
    }
}
