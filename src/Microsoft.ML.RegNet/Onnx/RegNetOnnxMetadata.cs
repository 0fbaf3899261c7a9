using System.Text.Json;
using Microsoft.ML.RegNet.Configs;
using Microsoft.ML.RegNet.Modules;

namespace Microsoft.ML.RegNet.Onnx;

/// <summary>
/// What the exporter stores in the ONNX <c>metadata_props</c> under <see cref="Key"/> (JSON) so that the architecture and
/// the BN counters can be rebuilt from the file alone.
/// </summary>
internal sealed record RegNetOnnxMetadata
{
    public const string Key = "regnet";
    public const int CurrentFormat = 1;

    public int Format { get; init; } = CurrentFormat;
    public string Name { get; init; } = "";
    public int Depth { get; init; }
    public double W0 { get; init; }
    public double WA { get; init; }
    public double WM { get; init; }
    public int GroupWidth { get; init; }
    public double BottleneckRatio { get; init; }
    public double SeRatio { get; init; }
    public string Rounding { get; init; } = nameof(WidthRounding.Nearest);
    public int NumClasses { get; init; }
    public string Padding { get; init; } = nameof(PaddingStyle.Symmetric);
    public bool FoldedBatchNorm { get; init; }
    public Dictionary<string, long> NumBatchesTracked { get; init; } = new();

    public static RegNetOnnxMetadata From(Models.RegNetModel model, bool folded, Dictionary<string, long> counters)
    {
        var s = model.Spec;
        return new RegNetOnnxMetadata
        {
            Name = s.Name, Depth = s.Depth, W0 = s.W0, WA = s.WA, WM = s.WM, GroupWidth = s.GroupWidth,
            BottleneckRatio = s.BottleneckRatio, SeRatio = s.SeRatio, Rounding = s.Rounding.ToString(),
            NumClasses = model.NumClasses, Padding = model.Padding.ToString(), FoldedBatchNorm = folded, NumBatchesTracked = counters,
        };
    }

    public RegNetSpec ToSpec() => RegNetSpec.Create(Depth, W0, WA, WM, GroupWidth, BottleneckRatio, SeRatio,
        Enum.Parse<WidthRounding>(Rounding), Name);

    public PaddingStyle PaddingStyle => Enum.Parse<PaddingStyle>(Padding);

    public string ToJson() => JsonSerializer.Serialize(this);

    public static RegNetOnnxMetadata FromJson(string json) =>
        JsonSerializer.Deserialize<RegNetOnnxMetadata>(json) ?? throw new JsonException("empty metadata");
}
