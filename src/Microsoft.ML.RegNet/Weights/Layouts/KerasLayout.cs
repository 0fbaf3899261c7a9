using System.Globalization;

namespace Microsoft.ML.RegNet.Weights.Layouts;

/// <summary>One weight-holding Keras layer of a RegNet and the canonical (timm) layer it becomes.</summary>
/// <param name="KerasName">Layer name, e.g. <c>regnetx002_Stage_0_XBlock_0_conv_3x3</c>; for the head only the stable part <c>head_dense</c>.</param>
/// <param name="Canonical">Canonical module path, e.g. <c>s1.b1.conv2.conv</c>.</param>
/// <param name="Kind">Which tensors the layer holds.</param>
internal sealed record KerasLayer(string KerasName, string Canonical, LayerKind Kind);

/// <summary>
/// The naming of <c>keras.applications.regnet</c> (TF 2.9–2.15 / tf-keras), as data: layer names are
/// <c>{model}_stem_conv</c>, <c>{model}_Stage_{s}_{X|Y}Block_{k}{suffix}</c> with 0-based stage and block indices, and
/// a classifier whose name carries a session counter (<c>1head_dense</c>, <c>2head_dense</c>, …) and is therefore
/// paired by position, never by name.
/// </summary>
/// <remarks>
/// Tensor conversion to PyTorch: Conv2D kernel HWIO → OIHW (<c>permute(3, 2, 0, 1)</c>, also for the SE 1×1 convs and
/// grouped convs); Dense kernel (in, out) → (out, in); BatchNormalization gamma/beta/moving_mean/moving_variance →
/// weight/bias/running_mean/running_var. Keras weights expect [0, 1]-scaled RGB without mean/std and TF "same" padding.
/// </remarks>
internal static class KerasLayout
{
    /// <summary>Keras weight names per layer kind, in the order Keras stores them (trainable, then non-trainable).</summary>
    public static IReadOnlyDictionary<LayerKind, string[]> WeightsOf { get; } = new Dictionary<LayerKind, string[]>
    {
        [LayerKind.Conv] = new[] { "kernel" },
        [LayerKind.ConvWithBias] = new[] { "kernel", "bias" },
        [LayerKind.BatchNorm] = new[] { "gamma", "beta", "moving_mean", "moving_variance" },
        [LayerKind.Linear] = new[] { "kernel", "bias" },
    };

    /// <summary>Keras weight name → PyTorch tensor name.</summary>
    public static IReadOnlyDictionary<string, string> TensorNames { get; } = new Dictionary<string, string>
    {
        ["kernel"] = "weight", ["bias"] = "bias", ["gamma"] = "weight", ["beta"] = "bias",
        ["moving_mean"] = "running_mean", ["moving_variance"] = "running_var",
    };

    /// <summary>
    /// Block layers in the order of the Keras model's <c>layers</c> list (which <c>load_weights</c> pairs by): Keras
    /// orders a functional model's layers by graph depth, so the projection shortcut (depth equal to <c>_conv_1x1_2</c>)
    /// comes after the last 1×1 conv and its BN after that conv's BN.
    /// </summary>
    public static IReadOnlyList<(string Canonical, string Suffix, LayerKind Kind)> BlockLayers { get; } = new[]
    {
        ("conv1.conv", "_conv_1x1_1", LayerKind.Conv),
        ("conv1.bn", "_conv_1x1_1_bn", LayerKind.BatchNorm),
        ("conv2.conv", "_conv_3x3", LayerKind.Conv),
        ("conv2.bn", "_conv_3x3_bn", LayerKind.BatchNorm),
        ("se.fc1", "_squeeze_and_excite_squeeze", LayerKind.ConvWithBias),
        ("se.fc2", "_squeeze_and_excite_excite", LayerKind.ConvWithBias),
        ("conv3.conv", "_conv_1x1_2", LayerKind.Conv),
        ("downsample.conv", "_skip_1x1", LayerKind.Conv),
        ("conv3.bn", "_conv_1x1_2_bn", LayerKind.BatchNorm),
        ("downsample.bn", "_skip_bn", LayerKind.BatchNorm),
    };

    /// <summary>Stem layer suffixes.</summary>
    public const string StemConvSuffix = "_stem_conv";
    public const string StemBatchNormSuffix = "_stem_bn";

    /// <summary>The stable part of the classifier's name (the full name is <c>{uid}head_dense</c>).</summary>
    public const string HeadDenseSuffix = "head_dense";

    /// <summary>Keras's model-name prefix: <c>regnetx002</c> for <c>RegNetX002</c>; the lower-cased name for custom specs.</summary>
    public static string ModelPrefix(RegNetSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return spec.Name.ToLowerInvariant();
    }

    /// <summary>Every weight-holding layer of <paramref name="spec"/> in Keras order, named with <paramref name="prefix"/>.</summary>
    public static IReadOnlyList<KerasLayer> Layers(RegNetSpec spec, string prefix, bool includeTop)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var layers = new List<KerasLayer>
        {
            new(prefix + StemConvSuffix, "stem.conv", LayerKind.Conv),
            new(prefix + StemBatchNormSuffix, "stem.bn", LayerKind.BatchNorm),
        };
        string family = spec.HasSqueezeExcitation ? "Y" : "X";
        foreach (var block in spec.Blocks)
        {
            string keras = string.Create(CultureInfo.InvariantCulture, $"{prefix}_Stage_{block.Stage - 1}_{family}Block_{block.Index - 1}");
            string canonical = string.Create(CultureInfo.InvariantCulture, $"s{block.Stage}.b{block.Index}");
            foreach (var (role, suffix, kind) in BlockLayers)
            {
                bool present = role.StartsWith("se.", StringComparison.Ordinal) ? block.SeWidth > 0
                    : role.StartsWith("downsample.", StringComparison.Ordinal) ? block.HasProjection : true;
                if (present) layers.Add(new KerasLayer(keras + suffix, $"{canonical}.{role}", kind));
            }
        }
        if (includeTop) layers.Add(new KerasLayer("1" + HeadDenseSuffix, "head.fc", LayerKind.Linear));
        return layers;
    }
}
