using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microsoft.ML.RegNet;

// The one JSON form of an architecture, shared by the weight files (regnetml.spec) and the ONNX metadata:
// {"name", "depth", "w0", "wa", "wm", "group_width", "bottleneck_ratio", "se_ratio", "rounding": "nearest"|"torchvision"}.
public sealed partial class RegNetSpec
{
    /// <summary>The design-space parameters as a JSON object; <see cref="FromJson(JsonNode?)"/> rebuilds the spec from it.</summary>
    internal JsonObject ToJsonObject() => new()
    {
        ["name"] = Name, ["depth"] = Depth, ["w0"] = W0, ["wa"] = WA, ["wm"] = WM,
        ["group_width"] = GroupWidth, ["bottleneck_ratio"] = BottleneckRatio, ["se_ratio"] = SeRatio,
        ["rounding"] = RoundingName(Rounding),
    };

    /// <summary>The spec as one JSON object: <c>{"name", "depth", "w0", "wa", "wm", "group_width", "bottleneck_ratio",
    /// "se_ratio", "rounding"}</c>, the form weight files, ONNX metadata and run configs hold; <see cref="FromJson(string)"/> reads it.</summary>
    public string ToJson() => ToJsonObject().ToJsonString();

    /// <summary>A spec from its JSON form (<see cref="ToJson"/>), e.g. a custom architecture kept in a file.</summary>
    /// <exception cref="JsonException">Not JSON.</exception>
    /// <exception cref="InvalidDataException">Not a JSON object, or a field is missing or of the wrong kind.</exception>
    /// <exception cref="ArgumentException">The parameters do not describe a valid RegNet.</exception>
    public static RegNetSpec FromJson(string json) => FromJson(JsonNode.Parse(json));

    internal static RegNetSpec FromJson(JsonNode? node)
    {
        if (node is not JsonObject o) throw new InvalidDataException("The RegNet spec is not a JSON object.");
        try
        {
            return Create(Field<int>(o, "depth"), Field<double>(o, "w0"), Field<double>(o, "wa"), Field<double>(o, "wm"),
                Field<int>(o, "group_width"), Field<double>(o, "bottleneck_ratio"), Field<double>(o, "se_ratio"),
                ParseRounding((string?)o["rounding"]), (string?)o["name"]);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"The RegNet spec has a field of the wrong kind ({e.Message}).", e);
        }
    }

    /// <summary>
    /// Whether a stored spec (this JSON, or the <c>ToString()</c> text older files hold) describes this architecture.
    /// </summary>
    internal bool MatchesStored(string stored)
    {
        if (stored.TrimStart().StartsWith('{'))
        {
            try
            {
                return Equals(FromJson(stored));
            }
            catch (Exception e) when (e is InvalidDataException or System.Text.Json.JsonException)
            {
                return false;
            }
        }
        return stored == ToString();
    }

    internal static string RoundingName(WidthRounding rounding) => rounding switch
    {
        WidthRounding.Nearest => "nearest",
        WidthRounding.TorchVision => "torchvision",
        _ => throw new ArgumentOutOfRangeException(nameof(rounding)),
    };

    // Case-insensitive, so that the enum names written by format 1 of the ONNX metadata ("TorchVision") read too;
    // a missing value is the default rounding, as the first weight files had none.
    internal static WidthRounding ParseRounding(string? name) => name?.ToLowerInvariant() switch
    {
        null or "nearest" => WidthRounding.Nearest,
        "torchvision" => WidthRounding.TorchVision,
        _ => throw new InvalidDataException($"Unknown width rounding '{name}' (expected 'nearest' or 'torchvision')."),
    };

    private static T Field<T>(JsonObject o, string name) =>
        o[name] is JsonValue v ? v.GetValue<T>() : throw new InvalidDataException($"The RegNet spec lacks '{name}'.");
}
