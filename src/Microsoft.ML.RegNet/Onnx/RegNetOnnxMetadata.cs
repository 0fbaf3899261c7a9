using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.ML.RegNet.Modules;

namespace Microsoft.ML.RegNet.Onnx;

/// <summary>
/// What the exporter stores in the ONNX <c>metadata_props</c> under <see cref="Key"/> (JSON) so that the architecture and
/// the BN counters can be rebuilt from the file alone. The architecture is <see cref="RegNetSpec"/>'s own JSON form,
/// the one the weight files use too.
/// </summary>
/// <remarks>Format history: 1 wrote the architecture as flat fields (<c>Name</c>, <c>Depth</c>, <c>W0</c>, …,
/// <c>Rounding</c> as an enum name), still read; 2 holds it under <c>Spec</c>.</remarks>
internal sealed record RegNetOnnxMetadata
{
    public const string Key = "regnet";
    public const int CurrentFormat = 2;

    // Format 1's flat field → the spec's JSON field.
    private static readonly (string Flat, string Spec)[] Format1Fields =
    {
        ("Name", "name"), ("Depth", "depth"), ("W0", "w0"), ("WA", "wa"), ("WM", "wm"), ("GroupWidth", "group_width"),
        ("BottleneckRatio", "bottleneck_ratio"), ("SeRatio", "se_ratio"), ("Rounding", "rounding"),
    };

    public int Format { get; init; } = CurrentFormat;
    public JsonObject Spec { get; init; } = new();
    [JsonPropertyName("NumClasses")] // the stored name, kept so that earlier exports still read
    public int NumberOfClasses { get; init; }
    public string Padding { get; init; } = nameof(PaddingStyle.Symmetric);
    public bool FoldedBatchNorm { get; init; }
    public Dictionary<string, long> NumBatchesTracked { get; init; } = new();

    public static RegNetOnnxMetadata From(RegNetModel model, bool folded, Dictionary<string, long> counters) => new()
    {
        Spec = model.Spec.ToJsonObject(), NumberOfClasses = model.NumberOfClasses, Padding = model.Padding.ToString(),
        FoldedBatchNorm = folded, NumBatchesTracked = counters,
    };

    public RegNetSpec ToSpec() => RegNetSpec.FromJson(Spec);

    [JsonIgnore]
    public PaddingStyle PaddingStyle => Enum.Parse<PaddingStyle>(Padding);

    public string ToJson() => JsonSerializer.Serialize(this);

    public static RegNetOnnxMetadata FromJson(string json)
    {
        var o = JsonNode.Parse(json) as JsonObject ?? throw new JsonException("The metadata is not a JSON object.");
        if (o["Spec"] is null)
            o["Spec"] = new JsonObject(Format1Fields.Where(f => o[f.Flat] is not null)
                .Select(f => KeyValuePair.Create<string, JsonNode?>(f.Spec, o[f.Flat]!.DeepClone())));
        return o.Deserialize<RegNetOnnxMetadata>() ?? throw new JsonException("empty metadata");
    }
}
