namespace Microsoft.ML.RegNet;

/// <summary>A tensor whose shape differs between the file and the model.</summary>
/// <param name="ModelName">The tensor's name in the model (timm layout).</param>
/// <param name="FileName">The tensor's name in the file (the file's layout).</param>
/// <param name="FileShape">Its shape in the file.</param>
/// <param name="ModelShape">Its shape in the model.</param>
public sealed record ShapeMismatch(string ModelName, string FileName, long[] FileShape, long[] ModelShape)
{
    /// <summary>Both names and both shapes, in one sentence.</summary>
    public override string ToString() =>
        $"'{FileName}' has shape [{string.Join(", ", FileShape)}] in the file but '{ModelName}' has [{string.Join(", ", ModelShape)}] in the model";
}

/// <summary>What a load did: tensors copied, and (non-strict loads only) what was skipped.</summary>
/// <param name="Layout">The layout the file's names were read in (<c>timm</c>, <c>torchvision</c>, <c>pycls</c>, Keras).</param>
/// <param name="Loaded">Names (in the file) of the tensors copied into the model.</param>
/// <param name="Missing">Model tensors the file does not have.</param>
/// <param name="Unexpected">File tensors the model has no place for.</param>
/// <param name="Mismatched">Tensors present in both with different shapes.</param>
public sealed record WeightLoadReport(
    string Layout, IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected,
    IReadOnlyList<ShapeMismatch> Mismatched)
{
    /// <summary>True when every model tensor was loaded and nothing in the file was left over.</summary>
    public bool IsComplete => Missing.Count == 0 && Unexpected.Count == 0 && Mismatched.Count == 0;

    /// <summary>Counts and the first ten names of each list.</summary>
    public override string ToString() =>
        $"{Loaded.Count} tensors loaded ({Layout} layout); missing: {Describe(Missing)}; unexpected: {Describe(Unexpected)}; " +
        $"shape mismatches: {(Mismatched.Count == 0 ? "none" : string.Join("; ", Mismatched))}";

    private static string Describe(IReadOnlyList<string> names) =>
        names.Count == 0 ? "none" : string.Join(", ", names.Take(10)) + (names.Count > 10 ? $" … ({names.Count} in all)" : "");
}
