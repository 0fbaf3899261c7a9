using Microsoft.ML.RegNet.Weights.Layouts;

namespace Microsoft.ML.RegNet;

/// <summary>
/// How one ecosystem names a RegNet's layers. A layout is data: module paths per role, plus a block-prefix template
/// with <c>{S}</c> (1-based stage), <c>{k0}</c> / <c>{k1}</c> (0- / 1-based block index). The canonical layout
/// (the names of <see cref="RegNetModel"/>) is timm's.
/// </summary>
/// <param name="Name">Layout name, e.g. <c>torchvision</c>.</param>
/// <param name="MarkerKey">A key whose presence identifies the layout.</param>
/// <param name="StemConv">Path of the stem convolution.</param>
/// <param name="StemBatchNorm">Path of the stem BatchNorm.</param>
/// <param name="BlockPrefix">Template of a block's path.</param>
/// <param name="BlockRoles">Canonical block-relative path → this layout's block-relative path.</param>
/// <param name="Classifier">Path of the classifier.</param>
public sealed record StateDictLayout(
    string Name, string MarkerKey, string StemConv, string StemBatchNorm, string BlockPrefix,
    IReadOnlyDictionary<string, string> BlockRoles, string Classifier)
{
    /// <summary>Tensor names owned by each layer kind, in PyTorch's state-dict order.</summary>
    internal static IReadOnlyDictionary<LayerKind, string[]> TensorsOf { get; } = new Dictionary<LayerKind, string[]>
    {
        [LayerKind.Conv] = new[] { "weight" },
        [LayerKind.ConvWithBias] = new[] { "weight", "bias" },
        [LayerKind.BatchNorm] = new[] { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" },
        [LayerKind.Linear] = new[] { "weight", "bias" },
    };

    /// <summary>The layers of a block, by canonical block-relative path.</summary>
    internal static readonly (string Path, LayerKind Kind, Func<BlockSpec, bool> Present)[] BlockLayers =
    {
        ("conv1.conv", LayerKind.Conv, _ => true),
        ("conv1.bn", LayerKind.BatchNorm, _ => true),
        ("conv2.conv", LayerKind.Conv, _ => true),
        ("conv2.bn", LayerKind.BatchNorm, _ => true),
        ("se.fc1", LayerKind.ConvWithBias, b => b.SeWidth > 0),
        ("se.fc2", LayerKind.ConvWithBias, b => b.SeWidth > 0),
        ("conv3.conv", LayerKind.Conv, _ => true),
        ("conv3.bn", LayerKind.BatchNorm, _ => true),
        ("downsample.conv", LayerKind.Conv, b => b.HasProjection),
        ("downsample.bn", LayerKind.BatchNorm, b => b.HasProjection),
    };

    /// <summary>timm (and this library's own files): <c>stem.conv</c>, <c>s1.b1.conv1.conv</c>, <c>head.fc</c>.</summary>
    public static StateDictLayout Timm { get; } = new("timm", "s1.b1.conv1.conv.weight", "stem.conv", "stem.bn", "s{S}.b{k1}",
        BlockLayers.ToDictionary(l => l.Path, l => l.Path), "head.fc");

    /// <summary>torchvision: <c>stem.0</c>, <c>trunk_output.block1.block1-0.f.a.0</c>, <c>fc</c>.</summary>
    public static StateDictLayout TorchVision { get; } = new("torchvision", "stem.0.weight", "stem.0", "stem.1",
        "trunk_output.block{S}.block{S}-{k0}",
        new Dictionary<string, string>
        {
            ["conv1.conv"] = "f.a.0", ["conv1.bn"] = "f.a.1",
            ["conv2.conv"] = "f.b.0", ["conv2.bn"] = "f.b.1",
            ["se.fc1"] = "f.se.fc1", ["se.fc2"] = "f.se.fc2",
            ["conv3.conv"] = "f.c.0", ["conv3.bn"] = "f.c.1",
            ["downsample.conv"] = "proj.0", ["downsample.bn"] = "proj.1",
        }, "fc");

    /// <summary>pycls (<c>.pyth</c> checkpoints, state dict under <c>model_state</c>): <c>s1.b1.f.a</c>, <c>f.a_bn</c>, <c>proj</c>/<c>bn</c>.</summary>
    public static StateDictLayout Pycls { get; } = new("pycls", "s1.b1.f.a.weight", "stem.conv", "stem.bn", "s{S}.b{k1}",
        new Dictionary<string, string>
        {
            ["conv1.conv"] = "f.a", ["conv1.bn"] = "f.a_bn",
            ["conv2.conv"] = "f.b", ["conv2.bn"] = "f.b_bn",
            ["se.fc1"] = "f.se.f_ex.0", ["se.fc2"] = "f.se.f_ex.2",
            ["conv3.conv"] = "f.c", ["conv3.bn"] = "f.c_bn",
            ["downsample.conv"] = "proj", ["downsample.bn"] = "bn",
        }, "head.fc");

    /// <summary>The PyTorch-style layouts, for detection by marker key.</summary>
    public static IReadOnlyList<StateDictLayout> Known { get; } = new[] { Timm, TorchVision, Pycls };

    /// <summary>The layout whose marker key is present, or null.</summary>
    public static StateDictLayout? Detect(IEnumerable<string> keys)
    {
        var set = keys as ISet<string> ?? new HashSet<string>(keys);
        return Known.FirstOrDefault(l => set.Contains(l.MarkerKey));
    }

    /// <summary>Every layer of <paramref name="spec"/> as (canonical path, this layout's path, kind), in network order.</summary>
    internal IEnumerable<(string Canonical, string Mapped, LayerKind Kind)> Layers(RegNetSpec spec, bool includeClassifier)
    {
        yield return ("stem.conv", StemConv, LayerKind.Conv);
        yield return ("stem.bn", StemBatchNorm, LayerKind.BatchNorm);
        foreach (var block in spec.Blocks)
        {
            string canonicalPrefix = Timm.PrefixOf(block);
            string prefix = PrefixOf(block);
            foreach (var (path, kind, present) in BlockLayers)
                if (present(block))
                    yield return ($"{canonicalPrefix}.{path}", $"{prefix}.{BlockRoles[path]}", kind);
        }
        if (includeClassifier) yield return ("head.fc", Classifier, LayerKind.Linear);
    }

    /// <summary>Canonical tensor name → this layout's tensor name, for every tensor of <paramref name="spec"/>.</summary>
    public IReadOnlyDictionary<string, string> TensorNames(RegNetSpec spec, bool includeClassifier)
    {
        var map = new Dictionary<string, string>();
        foreach (var (canonical, mapped, kind) in Layers(spec, includeClassifier))
            foreach (var tensor in TensorsOf[kind])
                map[$"{canonical}.{tensor}"] = $"{mapped}.{tensor}";
        return map;
    }

    private string PrefixOf(BlockSpec block) => BlockPrefix
        .Replace("{S}", block.Stage.ToString(System.Globalization.CultureInfo.InvariantCulture))
        .Replace("{k0}", (block.Index - 1).ToString(System.Globalization.CultureInfo.InvariantCulture))
        .Replace("{k1}", block.Index.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
