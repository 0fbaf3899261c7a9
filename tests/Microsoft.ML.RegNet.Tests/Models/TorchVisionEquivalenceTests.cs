using System.Text.Json;
using Microsoft.ML.RegNet.Weights;
using Microsoft.ML.RegNet.Weights.Formats;
using Microsoft.ML.RegNet.Weights.Layouts;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Models;

/// <summary>
/// RegNetModel against torchvision 0.14's generic RegNet (fixtures from tests/fixtures/equivalence/generate_torchvision_fixtures.py).
/// Set REGNET_EXTRA_FIXTURES to a folder of more fixtures from the same script to check those too.
/// </summary>
[TestClass]
public sealed class TorchVisionEquivalenceTests
{
    private const double LogitTolerance = 1e-4;

    public static IEnumerable<object[]> Fixtures()
    {
        var folders = new List<string> { Path.Combine(AppContext.BaseDirectory, "fixtures", "equivalence") };
        if (Environment.GetEnvironmentVariable("REGNET_EXTRA_FIXTURES") is { Length: > 0 } extra) folders.Add(extra);
        return folders.Where(Directory.Exists)
            .SelectMany(f => Directory.GetFiles(f, "*.safetensors"))
            .OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => new object[] { p });
    }

    public static string FixtureName(System.Reflection.MethodInfo _, object?[]? data) => Path.GetFileNameWithoutExtension((string)data![0]!);

    [TestMethod]
    public void CommittedFixturesCoverZooCustomAndClippedSpecs()
    {
        var names = Fixtures().Select(f => Path.GetFileNameWithoutExtension((string)f[0])).ToHashSet();
        foreach (var required in new[] { "X002", "Y002", "X080", "custom_se", "custom_clipped" })
            Assert.Contains(required, names);
    }

    [TestMethod]
    [DynamicData(nameof(Fixtures), DynamicDataDisplayName = nameof(FixtureName))]
    public void EvalLogitsAndTrainModeRunningStatsMatchTorchVision(string fixturePath)
    {
        var (tensors, metadata) = Safetensors.Read(fixturePath);
        using var _ = new DisposeAll(tensors.Values);
        var spec = SpecOf(metadata);
        AssertStagesMatch(spec, metadata["stages"]);
        int numberOfClasses = int.Parse(metadata["num_classes"]);

        using var model = new RegNetModel(spec, numberOfClasses);
        var weights = WeightsFor(model, tensors);
        var report = StateDictLoader.Load(model, weights, layout: null, strict: true);
        Assert.AreEqual("torchvision", report.Layout);

        using (no_grad())
        {
            model.eval();
            using var logits = model.call(tensors["input"]);
            AssertClose(tensors["logits_eval"], logits, LogitTolerance, "eval logits");

            model.train();
            using var trainLogits = model.call(tensors["input"]);
            // Batch statistics over a batch of 2 (as few as 8 values per channel in the last stage at 64×64) amplify
            // float32 rounding differences between libtorch versions, so train-mode logits get a looser, relative bound.
            AssertClose(tensors["logits_train"], trainLogits, 1e-3, "train-mode logits", relative: true);
        }

        var mapped = StateDictLayout.TorchVision.TensorNames(spec, includeClassifier: true);
        int checkedStats = 0;
        foreach (var (canonical, tensor) in model.state_dict())
        {
            if (!canonical.EndsWith("running_mean") && !canonical.EndsWith("running_var")) continue;
            AssertClose(tensors["after_train." + mapped[canonical]], tensor, 1e-3, canonical, relative: true); // same batch-statistics caveat
            checkedStats++;
        }
        Assert.AreEqual(tensors.Keys.Count(k => k.StartsWith("after_train.")), checkedStats);
        // The fixture's statistics must have moved in that step, or the comparison above proves nothing.
        var initial = WeightsFor(model, tensors);
        string firstMean = mapped.First(kv => kv.Key.EndsWith("running_mean")).Value;
        using var moved = (initial[firstMean] - tensors["after_train." + firstMean]).abs().max();
        Assert.IsGreaterThan(1e-3, moved.item<float>(), "running_mean did not change in the reference train step");
    }

    private static RegNetSpec SpecOf(IReadOnlyDictionary<string, string> metadata)
    {
        if (!metadata.TryGetValue("design", out var designJson)) return RegNetSpec.FromName(metadata["name"]);
        using var design = JsonDocument.Parse(designJson);
        var d = design.RootElement;
        return RegNetSpec.Create(d.GetProperty("depth").GetInt32(), d.GetProperty("w0").GetDouble(), d.GetProperty("wa").GetDouble(),
            d.GetProperty("wm").GetDouble(), d.GetProperty("group_width").GetInt32(), seRatio: d.GetProperty("se_ratio").GetDouble());
    }

    private static void AssertStagesMatch(RegNetSpec spec, string stagesJson)
    {
        using var stages = JsonDocument.Parse(stagesJson);
        int[] Ints(string name) => stages.RootElement.GetProperty(name).EnumerateArray().Select(e => e.GetInt32()).ToArray();
        CollectionAssert.AreEqual(Ints("depths"), spec.StageDepths.ToArray(), "depths");
        CollectionAssert.AreEqual(Ints("widths"), spec.StageWidths.ToArray(), "widths");
        CollectionAssert.AreEqual(Ints("group_widths"), spec.StageGroupWidths.ToArray(), "group widths");
    }

    // Small fixtures carry their weights; large ones are regenerated from the portable PRNG under torchvision names.
    private static Dictionary<string, Tensor> WeightsFor(RegNetModel model, Dictionary<string, Tensor> fixture)
    {
        const string prefix = "weights.";
        if (fixture.Keys.Any(k => k.StartsWith(prefix)))
            return fixture.Where(kv => kv.Key.StartsWith(prefix)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
        var names = StateDictLayout.TorchVision.TensorNames(model.Spec, includeClassifier: true);
        return model.state_dict()
            .Where(kv => !kv.Key.EndsWith("num_batches_tracked"))
            .ToDictionary(kv => names[kv.Key], kv => PortableWeights.Create(names[kv.Key], kv.Value.shape));
    }

    /// <summary>Max |expected − actual| ≤ tolerance, or (relative) ≤ tolerance · max(1, max |expected|).</summary>
    internal static void AssertClose(Tensor expected, Tensor actual, double tolerance, string what, bool relative = false)
    {
        CollectionAssert.AreEqual(expected.shape, actual.shape, $"{what}: shape");
        using var diff = (expected - actual).abs().max();
        using var magnitude = expected.abs().max();
        double maxAbs = diff.item<float>();
        double allowed = relative ? tolerance * Math.Max(1.0, magnitude.item<float>()) : tolerance;
        Assert.IsLessThanOrEqualTo(allowed, maxAbs, $"{what}: max |difference| {maxAbs:E3} exceeds {allowed:E1}");
    }

    private sealed class DisposeAll(IEnumerable<IDisposable> items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var item in items) item.Dispose();
        }
    }
}
