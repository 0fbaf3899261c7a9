using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.RegNet.Modules;

namespace Microsoft.ML.RegNet.Weights;

/// <summary>
/// This library's own weight format (version 1): a standard <b>safetensors</b> file whose tensors are the model's
/// state dict in <b>timm</b> layout (float32 parameters and buffers, int64 <c>num_batches_tracked</c>), and whose
/// <c>__metadata__</c> (string → string, as safetensors requires) holds:
/// <list type="table">
/// <item><term><c>format</c></term><description><c>pt</c> (the Hugging Face convention; lets <c>safetensors.torch</c> tools accept it)</description></item>
/// <item><term><c>regnetml.format</c></term><description><c>regnetml-weights</c> — marks the file</description></item>
/// <item><term><c>regnetml.version</c></term><description><c>1</c></description></item>
/// <item><term><c>regnetml.spec</c></term><description>JSON: <c>name, depth, w0, wa, wm, group_width, bottleneck_ratio, se_ratio, rounding</c> (<c>nearest</c>|<c>torchvision</c>)</description></item>
/// <item><term><c>regnetml.num_classes</c></term><description>classifier outputs (0 = headless)</description></item>
/// <item><term><c>regnetml.class_names</c></term><description>JSON array of strings (may be empty)</description></item>
/// <item><term><c>regnetml.preprocessing</c></term><description>JSON: <c>scale, mean[3], std[3], channel_order</c> (<c>rgb</c>|<c>bgr</c>), <c>image_size, crop_fraction, interpolation</c></description></item>
/// <item><term><c>regnetml.padding</c></term><description><c>symmetric</c> or <c>tensorflow_same</c></description></item>
/// <item><term><c>user.*</c></term><description>free-form entries from the caller</description></item>
/// </list>
/// Python reads it with <c>safetensors.torch.load_file</c> and <c>timm.create_model(..., num_classes=n).load_state_dict(...)</c>.
/// The recommended extension is <c>.regnet.safetensors</c> (or <c>.regnet</c>); detection uses the metadata, not the name.
/// </summary>
internal static class RegNetFile
{
    public const string FormatKey = "regnetml.format";
    public const string FormatName = "regnetml-weights";
    public const string VersionKey = "regnetml.version";
    public const string SpecKey = "regnetml.spec";
    public const string NumClassesKey = "regnetml.num_classes";
    public const string ClassNamesKey = "regnetml.class_names";
    public const string PreprocessingKey = "regnetml.preprocessing";
    public const string PaddingKey = "regnetml.padding";
    public const string UserPrefix = "user.";
    public const int Version = 1;

    internal static Dictionary<string, string> Metadata(RegNetSpec spec, int numberOfClasses, IReadOnlyList<string>? classNames,
        PreprocessingSpec preprocessing, PaddingStyle padding, IReadOnlyDictionary<string, string>? user)
    {
        var meta = new Dictionary<string, string>
        {
            ["format"] = "pt",
            [FormatKey] = FormatName,
            [VersionKey] = Version.ToString(CultureInfo.InvariantCulture),
            [SpecKey] = spec.ToJson(),
            [NumClassesKey] = numberOfClasses.ToString(CultureInfo.InvariantCulture),
            [ClassNamesKey] = JsonSerializer.Serialize(classNames ?? Array.Empty<string>()),
            [PreprocessingKey] = PreprocessingToJson(preprocessing),
            [PaddingKey] = padding == PaddingStyle.TensorFlowSame ? "tensorflow_same" : "symmetric",
        };
        if (user is not null)
            foreach (var (k, v) in user) meta[k.StartsWith(UserPrefix, StringComparison.Ordinal) ? k : UserPrefix + k] = v;
        return meta;
    }

    internal static string PreprocessingToJson(PreprocessingSpec p) => new JsonObject
    {
        ["scale"] = p.Normalization.Scale,
        ["mean"] = new JsonArray(p.Normalization.Mean.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
        ["std"] = new JsonArray(p.Normalization.Std.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
        ["channel_order"] = p.Normalization.Order == ChannelOrder.Bgr ? "bgr" : "rgb",
        ["image_size"] = p.ImageSize, ["crop_fraction"] = p.CropFraction,
        ["interpolation"] = p.Interpolation == Interpolation.Bicubic ? "bicubic" : "bilinear",
    }.ToJsonString();

    internal static PreprocessingSpec PreprocessingFromJson(string json)
    {
        var o = JsonNode.Parse(json)?.AsObject() ?? throw new InvalidDataException("regnetml.preprocessing is empty.");
        float[] Floats(string name) => o[name]!.AsArray().Select(v => (float)v!).ToArray();
        var norm = new ImageNormalization((float)o["scale"]!, Floats("mean"), Floats("std"),
            (string?)o["channel_order"] == "bgr" ? ChannelOrder.Bgr : ChannelOrder.Rgb);
        return new PreprocessingSpec(norm, (int)o["image_size"]!, (double)o["crop_fraction"]!,
            (string?)o["interpolation"] == "bicubic" ? Interpolation.Bicubic : Interpolation.Bilinear);
    }

    internal static PaddingStyle PaddingFromString(string? value) =>
        value == "tensorflow_same" ? PaddingStyle.TensorFlowSame : PaddingStyle.Symmetric;
}
