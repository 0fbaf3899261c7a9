using Microsoft.ML.RegNet.Onnx;

namespace Microsoft.ML.RegNet;

/// <summary>What <see cref="RegNetOnnxExporter"/> writes: opset, tensor names, extra outputs, baked-in preprocessing and BN folding.</summary>
public sealed class OnnxExportOptions
{
    /// <summary>Lowest supported opset (Softmax on one axis, Slice/Squeeze with tensor inputs).</summary>
    public const int MinimumOpset = 13;

    /// <summary>Highest opset this exporter has been checked against.</summary>
    public const int MaximumOpset = 21;

    /// <summary>ONNX default-domain opset version, <see cref="MinimumOpset"/>…<see cref="MaximumOpset"/>. Default 17.</summary>
    public int OpsetVersion { get; set; } = 17;

    /// <summary>Name of the graph input: float N×3×H×W. Default <c>input</c>.</summary>
    public string InputName { get; set; } = "input";

    /// <summary>Name of the logits output (N×classes; pooled features N×width for a headless model). Default <c>logits</c>.</summary>
    public string OutputName { get; set; } = "logits";

    /// <summary>When set, a softmax output (N×classes) of this name is added. Default null (none).</summary>
    public string? ProbabilitiesOutputName { get; set; }

    /// <summary>When set, an int64 arg-max output (N) of this name is added (the top-1 class index, 0-based). Default null.</summary>
    public string? PredictedIndexOutputName { get; set; }

    /// <summary>
    /// Class names, one per output, in order: with <see cref="ProbabilitiesOutputName"/> they are stored as that output's slot
    /// names the way ML.NET's OnnxTransformer reads them (a node <c>mlnet.&lt;output&gt;.SlotNames</c>). Default null.
    /// </summary>
    public IReadOnlyList<string>? ClassNames { get; set; }

    /// <summary>When false, the logits output is left out (then a softmax or arg-max output is required). Default true.</summary>
    public bool IncludeLogits { get; set; } = true;

    /// <summary>
    /// Fixed input height and width; null (default) leaves them symbolic (<c>height</c>, <c>width</c>) so any size ≥ 32 runs.
    /// When <see cref="CropFromSize"/> is set this is the size after the in-graph centre crop.
    /// </summary>
    public int? ImageSize { get; set; }

    /// <summary>
    /// Optional in-graph centre crop: the input is <c>CropFromSize</c>² and the graph slices the centre <see cref="ImageSize"/>²
    /// (offset <c>ceil((CropFromSize − ImageSize) / 2)</c>, the evaluation transform's window,
    /// <see cref="Data.Transforms.EvaluationCrop.WindowOffsetFor"/>). Requires <see cref="ImageSize"/>.
    /// </summary>
    public int? CropFromSize { get; set; }

    /// <summary>Fixed batch size; null (default) gives a symbolic batch dimension <c>N</c>.</summary>
    public int? BatchSize { get; set; }

    /// <summary>
    /// Drop the batch dimension from the outputs (logits/probabilities become [classes], the arg-max a one-element
    /// vector [1]: ML.NET's OnnxTransformer fails on rank-0 tensor outputs).
    /// Requires <see cref="BatchSize"/> = 1; this is the layout ML.NET's ApplyOnnxModel needs for a plain <c>Vector&lt;Single, C&gt;</c>.
    /// </summary>
    public bool SqueezeBatchDimension { get; set; }

    /// <summary>
    /// When set, the graph takes raw pixels (0–255, planes R, G, B, as ML.NET's ExtractPixels writes them) and applies
    /// x = (pixel · Scale − Mean[c]) / Std[c] (Mean/Std indexed by colour R, G, B) and, for <see cref="ChannelOrder.Bgr"/>,
    /// reorders the planes to B, G, R. Null (default): the input is already normalised.
    /// </summary>
    public ImageNormalization? Normalization { get; set; }

    /// <summary>
    /// Fold every BatchNorm into its convolution (W·γ/√(σ²+ε), β − μ·γ/√(σ²+ε)). Smaller, faster graphs; weights recovered
    /// from such a file give an equivalent model whose BNs are identities (γ = 1, β = folded bias, μ = 0, σ² = 1 − ε).
    /// Default false (BatchNormalization nodes, bit-exact weight recovery).
    /// </summary>
    public bool FoldBatchNorm { get; set; }

    /// <summary>Graph name. Default <c>regnet</c>.</summary>
    public string GraphName { get; set; } = "regnet";

    /// <summary>Optional free-text description stored in the model.</summary>
    public string? DocString { get; set; }

    /// <summary>A copy.</summary>
    public OnnxExportOptions Clone() => (OnnxExportOptions)MemberwiseClone();

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting and how to fix it.</summary>
    public void Validate()
    {
        if (OpsetVersion < MinimumOpset || OpsetVersion > MaximumOpset)
            throw new ArgumentException($"OnnxExportOptions.OpsetVersion must be between {MinimumOpset} and {MaximumOpset} (got {OpsetVersion}).", nameof(OpsetVersion));
        var names = new List<(string Setting, string? Value)>
        {
            (nameof(InputName), InputName),
            (nameof(OutputName), IncludeLogits ? OutputName : null),
            (nameof(ProbabilitiesOutputName), ProbabilitiesOutputName),
            (nameof(PredictedIndexOutputName), PredictedIndexOutputName),
        };
        if (string.IsNullOrWhiteSpace(InputName))
            throw new ArgumentException("OnnxExportOptions.InputName must be a non-empty tensor name.", nameof(InputName));
        if (IncludeLogits && string.IsNullOrWhiteSpace(OutputName))
            throw new ArgumentException("OnnxExportOptions.OutputName must be a non-empty tensor name (or set IncludeLogits = false).", nameof(OutputName));
        foreach (var (setting, value) in names)
            if (value is not null && (value.Length == 0 || value.Trim() != value))
                throw new ArgumentException($"OnnxExportOptions.{setting} '{value}' must be non-empty without leading/trailing spaces (use null to leave the output out).", setting);
        var used = names.Where(n => n.Value is not null).ToList();
        var duplicate = used.GroupBy(n => n.Value).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"OnnxExportOptions: {string.Join(" and ", duplicate.Select(d => d.Setting))} are both '{duplicate.Key}'; every input and output needs its own name.");
        if (!IncludeLogits && ProbabilitiesOutputName is null && PredictedIndexOutputName is null)
            throw new ArgumentException("OnnxExportOptions: IncludeLogits is false and no ProbabilitiesOutputName or PredictedIndexOutputName is set, so the graph would have no output.");
        if (ImageSize is { } size && size < RegNetModel.MinimumInputSize)
            throw new ArgumentException($"OnnxExportOptions.ImageSize must be at least {RegNetModel.MinimumInputSize} (got {size}).", nameof(ImageSize));
        if (CropFromSize is { } from)
        {
            if (ImageSize is null)
                throw new ArgumentException("OnnxExportOptions.CropFromSize needs ImageSize (the size after the centre crop).", nameof(CropFromSize));
            if (from < ImageSize)
                throw new ArgumentException($"OnnxExportOptions.CropFromSize ({from}) must be at least ImageSize ({ImageSize}).", nameof(CropFromSize));
        }
        if (BatchSize is { } batch && batch < 1)
            throw new ArgumentException($"OnnxExportOptions.BatchSize must be ≥ 1, or null for a dynamic batch (got {batch}).", nameof(BatchSize));
        if (SqueezeBatchDimension && BatchSize != 1)
            throw new ArgumentException("OnnxExportOptions.SqueezeBatchDimension requires BatchSize = 1.", nameof(SqueezeBatchDimension));
        if (Normalization is { } n)
        {
            if (n.Mean is not { Length: 3 } || n.Std is not { Length: 3 })
                throw new ArgumentException("OnnxExportOptions.Normalization needs three Mean and three Std values (R, G, B).", nameof(Normalization));
            if (n.Std.Any(s => !(s > 0) || float.IsInfinity(s)) || n.Mean.Any(m => !float.IsFinite(m)) || !float.IsFinite(n.Scale) || n.Scale == 0)
                throw new ArgumentException("OnnxExportOptions.Normalization needs finite values, Std > 0 and a non-zero Scale.", nameof(Normalization));
        }
        if (ClassNames is { } classes && (classes.Count == 0 || classes.Any(string.IsNullOrEmpty)))
            throw new ArgumentException("OnnxExportOptions.ClassNames must hold one non-empty name per class.", nameof(ClassNames));
        if (string.IsNullOrWhiteSpace(GraphName))
            throw new ArgumentException("OnnxExportOptions.GraphName must be non-empty.", nameof(GraphName));
    }
}
