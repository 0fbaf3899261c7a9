using Microsoft.ML.RegNet.Weights.Layouts;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Models;

[TestClass]
public sealed class RegNetModelTests
{
    private static readonly RegNetSpec Tiny = RegNetSpec.Create(depth: 6, w0: 16, wa: 16, wm: 2, groupWidth: 8, seRatio: 0.25);

    [TestMethod]
    [DataRow("X002", 266), DataRow("Y002", 318)]
    public void ParametersAndStateDictMatchTheReferenceCounts(string name, int stateDictEntries)
    {
        var spec = RegNetSpec.FromName(name);
        using var model = new RegNetModel(spec);
        Assert.AreEqual(spec.ParameterCount(), model.parameters().Sum(p => p.numel()));
        Assert.HasCount(stateDictEntries, model.state_dict());
        CollectionAssert.AreEquivalent(
            StateDictLayout.Timm.TensorNames(spec, includeClassifier: true).Keys.ToArray(), model.state_dict().Keys.ToArray());
    }

    [TestMethod]
    public void HeadlessModelReturnsPooledFeaturesAndStagesHaveStrides4To32()
    {
        using var model = new RegNetModel(Tiny, numberOfClasses: 0);
        model.eval();
        using var _ = no_grad();
        using var x = randn(2, 3, 64, 64);
        using var pooled = model.call(x);
        CollectionAssert.AreEqual(new long[] { 2, Tiny.FeatureWidth }, pooled.shape);
        Assert.IsNull(model.Classifier);
        var features = model.ForwardFeatures(x);
        try
        {
            Assert.HasCount(4, features);
            for (int i = 0; i < 4; i++)
                CollectionAssert.AreEqual(new long[] { 2, Tiny.StageWidths[i], 64 >> (i + 2), 64 >> (i + 2) }, features[i].shape);
            using var mean = features[3].mean(new long[] { 2, 3 });
            using var diff = (mean - pooled).abs().max();
            Assert.AreEqual(0f, diff.item<float>(), 1e-6f);
        }
        finally
        {
            foreach (var f in features) f.Dispose();
        }
    }

    [TestMethod]
    public void InitialisationFollowsPycls()
    {
        using var model = new RegNetModel(Tiny, numberOfClasses: 10, zeroInitLastBatchNorm: true);
        var conv = model.Stages[2].Blocks[0].Conv2.Conv.weight!; // 64 → 64, 3×3, fan_out = 9 · 64
        Assert.AreEqual(Math.Sqrt(2.0 / (9 * 64)), conv.std().item<float>(), 0.1 * Math.Sqrt(2.0 / (9 * 64)));
        Assert.AreEqual(0.01, model.Classifier!.weight!.std().item<float>(), 0.002);
        Assert.AreEqual(0f, model.Classifier.bias!.abs().max().item<float>());
        Assert.AreEqual(0f, model.Stages[0].Blocks[0].Conv3.Norm.weight!.abs().max().item<float>(), "zero-init last BN γ");
        Assert.AreEqual(1f, model.Stages[0].Blocks[0].Conv1.Norm.weight!.min().item<float>());
    }

    [TestMethod]
    public void InvalidArgumentsSayWhatWasExpected()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => new RegNetModel(Tiny, numberOfClasses: -1));
        StringAssert.Contains(e.Message, "numberOfClasses");
        using var model = new RegNetModel(Tiny, numberOfClasses: 3);
        foreach (var shape in new[] { new long[] { 3, 64, 64 }, new long[] { 1, 1, 64, 64 }, new long[] { 1, 3, 16, 64 }, new long[] { 1, 3, 64, 31 } })
        {
            using var x = zeros(shape);
            var error = Assert.ThrowsExactly<ArgumentException>(() => model.call(x));
            StringAssert.Contains(error.Message, "N×3×H×W");
            StringAssert.Contains(error.Message, string.Join(", ", shape));
        }
    }

    [TestMethod]
    public void X002TrainStepAt224RunsAndLowersTheLossOnItsBatch()
    {
        manual_seed(3);
        using var model = new RegNetModel(RegNetSpec.FromName("X002"), numberOfClasses: 10);
        using var optimizer = optim.AdamW(model.parameters(), lr: 1e-3, weight_decay: 5e-5);
        using var x = randn(8, 3, 224, 224);
        using var y = tensor(new long[] { 0, 1, 2, 3, 4, 5, 6, 7 });
        model.train();
        float first = 0, last = 0;
        for (int step = 0; step < 3; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.call(x), y);
            loss.backward();
            optimizer.step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        Assert.IsTrue(float.IsFinite(first) && float.IsFinite(last));
        Assert.IsLessThan(first, last, $"loss {first} → {last}");
    }
}
