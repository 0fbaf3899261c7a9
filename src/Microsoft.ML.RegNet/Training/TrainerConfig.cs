using Microsoft.ML.RegNet.Configs;

namespace Microsoft.ML.RegNet.Training;

/// <summary>The resolved options of a run, for config.json.</summary>
internal static class TrainerConfig
{
    public static IReadOnlyDictionary<string, object?> Describe(RegNetTrainer.Options o, RegNetSpec spec, InputColumns columns, int seed)
    {
        var config = new SortedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["architecture"] = spec.Name,
            ["spec"] = new { depths = spec.StageDepths, widths = spec.StageWidths, group_widths = spec.StageGroupWidths, se_ratio = spec.SeRatio, spec.Depth, spec.W0, spec.WA, spec.WM, spec.GroupWidth },
            ["parameters"] = spec.ParameterCount(columns.ClassCount),
            ["classes"] = columns.ClassNames,
            ["seed"] = seed,
            ["started"] = DateTime.Now.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            ["torch_threads"] = TorchSharp.torch.get_num_threads(),
            ["convolution_self_test"] = Runtime.TorchRuntime.ConvolutionSelfTest,
            ["native_allocator"] = Runtime.TorchRuntime.NativeAllocator,
            ["augmentation"] = o.Augmentation,
            ["mixing"] = o.Mixing,
            ["normalization"] = new { o.Normalization.Scale, o.Normalization.Mean, o.Normalization.Std, Order = o.Normalization.Order.ToString() },
        };
        foreach (var field in typeof(RegNetTrainer.Options).GetFields())
        {
            object? value = field.GetValue(o);
            if (value is null || value is IDataView || value is Delegate || value is CancellationToken || value is RegNetSpec
                || value is RegNetTransformer || field.Name is nameof(RegNetTrainer.Options.Augmentation) or nameof(RegNetTrainer.Options.Mixing) or nameof(RegNetTrainer.Options.Normalization))
                continue;
            config[field.Name] = value is Enum ? value.ToString() : value;
        }
        config["HasValidationSet"] = o.ValidationSet is not null;
        return config;
    }
}
