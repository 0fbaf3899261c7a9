using Microsoft.ML.RegNet.Models;
using Microsoft.ML.RegNet.Weights.Layouts;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Weights;

/// <summary>A tensor whose shape differs between the file and the model.</summary>
public sealed record ShapeMismatch(string ModelName, string FileName, long[] FileShape, long[] ModelShape)
{
    public override string ToString() =>
        $"'{FileName}' has shape [{string.Join(", ", FileShape)}] in the file but '{ModelName}' has [{string.Join(", ", ModelShape)}] in the model";
}

/// <summary>What a load did: tensors copied, and (non-strict loads only) what was skipped.</summary>
public sealed record WeightLoadReport(
    string Layout, IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected,
    IReadOnlyList<ShapeMismatch> Mismatched)
{
    /// <summary>True when every model tensor was loaded and nothing in the file was left over.</summary>
    public bool IsComplete => Missing.Count == 0 && Unexpected.Count == 0 && Mismatched.Count == 0;

    public override string ToString() =>
        $"{Loaded.Count} tensors loaded ({Layout} layout); missing: {Describe(Missing)}; unexpected: {Describe(Unexpected)}; " +
        $"shape mismatches: {(Mismatched.Count == 0 ? "none" : string.Join("; ", Mismatched))}";

    private static string Describe(IReadOnlyList<string> names) =>
        names.Count == 0 ? "none" : string.Join(", ", names.Take(10)) + (names.Count > 10 ? $" … ({names.Count} in all)" : "");
}

/// <summary>Copies a name → tensor dictionary in any known layout into a <see cref="RegNetModel"/>.</summary>
public static class StateDictLoader
{
    // BatchNorm's batch counter only matters for momentum=None; files from Keras or converted checkpoints often lack it.
    private const string OptionalSuffix = ".num_batches_tracked";

    /// <summary>Loads <paramref name="source"/> into <paramref name="model"/>.</summary>
    /// <param name="model">The model to fill.</param>
    /// <param name="source">Tensor name → tensor, as read from a file.</param>
    /// <param name="layout">The naming of <paramref name="source"/>; detected from marker keys when null.</param>
    /// <param name="strict">Throw when any model tensor is missing, any file tensor is unused, or a shape differs.</param>
    /// <exception cref="ArgumentException">Unknown layout, or (strict) keys or shapes that do not match the model.</exception>
    public static WeightLoadReport Load(RegNetModel model, IReadOnlyDictionary<string, Tensor> source, StateDictLayout? layout = null, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(source);
        layout ??= StateDictLayout.Detect(source.Keys) ?? throw new ArgumentException(
            "The weights use no known RegNet layout (timm, torchvision or pycls): none of the keys " +
            $"{string.Join(", ", StateDictLayout.Known.Select(l => $"'{l.MarkerKey}'"))} is present. " +
            $"First keys in the file: {string.Join(", ", source.Keys.Take(5))}.", nameof(source));

        var names = layout.TensorNames(model.Spec, model.NumClasses > 0);
        var target = model.state_dict();
        var loaded = new List<string>();
        var missing = new List<string>();
        var mismatched = new List<ShapeMismatch>();
        var used = new HashSet<string>();

        using (no_grad())
        {
            foreach (var (modelName, tensor) in target)
            {
                if (!names.TryGetValue(modelName, out var fileName))
                    throw new InvalidOperationException($"Model tensor '{modelName}' has no entry in the {layout.Name} layout; the layout table is incomplete.");
                if (!source.TryGetValue(fileName, out var value))
                {
                    if (!modelName.EndsWith(OptionalSuffix, StringComparison.Ordinal)) missing.Add(fileName);
                    continue;
                }
                used.Add(fileName);
                if (!value.shape.SequenceEqual(tensor.shape))
                {
                    mismatched.Add(new ShapeMismatch(modelName, fileName, value.shape, tensor.shape));
                    continue;
                }
                tensor.copy_(value);
                loaded.Add(modelName);
            }
        }

        var unexpected = source.Keys.Where(k => !used.Contains(k)).ToList();
        var report = new WeightLoadReport(layout.Name, loaded, missing, unexpected, mismatched);
        if (strict && !report.IsComplete)
        {
            string firstProblem = mismatched.Count > 0
                ? $"The first mismatch: {mismatched[0]}. The file was probably saved for another architecture than {model.Spec.Name}."
                : "";
            throw new ArgumentException(
                $"The weights do not match {model.Spec.Name} with {model.NumClasses} classes. {firstProblem} {report}. " +
                "Load with strict: false to skip what does not match (for example a classifier with another class count).");
        }
        return report;
    }
}
