using Microsoft.ML.RegNet.Weights.Layouts;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Weights;

/// <summary>What a load will copy, worked out before anything is copied, so a strict load that fails leaves the model untouched.</summary>
internal sealed class WeightPlan(IReadOnlyList<(Tensor Target, Tensor Value)> copies, WeightLoadReport report)
{
    /// <summary>Loaded: what <see cref="Apply"/> copies; missing, unexpected and mismatched: what it skips.</summary>
    public WeightLoadReport Report { get; } = report;

    /// <summary>Copies every matching tensor into the model.</summary>
    public void Apply()
    {
        using var noGrad = no_grad();
        foreach (var (target, value) in copies) target.copy_(value);
    }
}

/// <summary>Copies a name → tensor dictionary in any known layout into a <see cref="RegNetModel"/>.</summary>
internal static class StateDictLoader
{
    // BatchNorm's batch counter only matters for momentum=None; files from Keras or converted checkpoints often lack it.
    private const string OptionalSuffix = ".num_batches_tracked";

    /// <summary>Loads <paramref name="source"/> into <paramref name="model"/>.</summary>
    /// <param name="model">The model to fill.</param>
    /// <param name="source">Tensor name → tensor, as read from a file.</param>
    /// <param name="layout">The naming of <paramref name="source"/>; detected from marker keys when null.</param>
    /// <param name="strict">Throw when any model tensor is missing, any file tensor is unused, or a shape differs; the model is then left untouched.</param>
    /// <exception cref="WeightMismatchException">(strict) keys or shapes that do not match the model.</exception>
    /// <exception cref="ArgumentException">Unknown layout.</exception>
    public static WeightLoadReport Load(RegNetModel model, IReadOnlyDictionary<string, Tensor> source, StateDictLayout? layout = null, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(source);
        layout ??= StateDictLayout.Detect(source.Keys) ?? throw new ArgumentException(
            "The weights use no known RegNet layout (timm, torchvision or pycls): none of the keys " +
            $"{string.Join(", ", StateDictLayout.Known.Select(l => $"'{l.MarkerKey}'"))} is present. " +
            $"First keys in the file: {string.Join(", ", source.Keys.Take(5))}.", nameof(source));
        var plan = Plan(model, source, layout);
        var report = plan.Report;
        if (strict && !report.IsComplete)
        {
            string firstProblem = report.Mismatched.Count > 0
                ? $"The first mismatch: {report.Mismatched[0]}. The file was probably saved for another architecture than {model.Spec.Name}."
                : "";
            throw new WeightMismatchException(
                $"The weights do not match {model.Spec.Name} with {model.NumberOfClasses} classes. {firstProblem} {report}. " +
                "Load with strict: false to skip what does not match (for example a classifier with another class count).", report);
        }
        plan.Apply();
        return report;
    }

    /// <summary>Pairs every model tensor with its file tensor by <paramref name="layout"/>'s names and compares shapes;
    /// file names in <paramref name="ignoredMissing"/> (a classifier that will be re-initialised) are not reported missing.</summary>
    internal static WeightPlan Plan(RegNetModel model, IReadOnlyDictionary<string, Tensor> source, StateDictLayout layout, IReadOnlySet<string>? ignoredMissing = null)
    {
        var names = layout.TensorNames(model.Spec, model.NumberOfClasses > 0);
        var copies = new List<(Tensor, Tensor)>();
        var loaded = new List<string>();
        var missing = new List<string>();
        var mismatched = new List<ShapeMismatch>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (modelName, tensor) in model.state_dict())
        {
            if (!names.TryGetValue(modelName, out var fileName))
                throw new InvalidOperationException($"Model tensor '{modelName}' has no entry in the {layout.Name} layout; the layout table is incomplete.");
            if (!source.TryGetValue(fileName, out var value))
            {
                if (!modelName.EndsWith(OptionalSuffix, StringComparison.Ordinal) && ignoredMissing?.Contains(fileName) != true) missing.Add(fileName);
                continue;
            }
            used.Add(fileName);
            if (!value.shape.SequenceEqual(tensor.shape))
            {
                mismatched.Add(new ShapeMismatch(modelName, fileName, value.shape, tensor.shape));
                continue;
            }
            copies.Add((tensor, value));
            loaded.Add(modelName);
        }
        var unexpected = source.Keys.Where(k => !used.Contains(k)).ToList();
        return new WeightPlan(copies, new WeightLoadReport(layout.Name, loaded, missing, unexpected, mismatched));
    }
}
