using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Modules;

/// <summary>
/// A frozen trunk runs with BatchNorm folded into its convolutions: the same outputs as conv → BatchNorm (within float
/// rounding), in eval mode only, with the model's own weights untouched, and gone once unfolded.
/// </summary>
[TestClass]
public sealed class FoldedNormalizationTests
{
    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void FoldedTrunkComputesWhatConvThenBatchNormComputes(bool tensorFlowPadding)
    {
        using var model = new RegNetModel(RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8, name: "tiny"), 3, generator: new Generator(3));
        if (tensorFlowPadding) model.Padding = PaddingStyle.TensorFlowSame;
        RandomizeStatistics(model);
        model.eval();
        using var input = randn(new long[] { 2, 3, 40, 40 }, generator: new Generator(4));
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        using var _ = no_grad();
        using var expected = model.call(input);

        model.FoldFrozenNormalization(model.Stages.Count);
        using var folded = model.call(input);
        Assert.IsTrue(folded.allclose(expected, rtol: 1e-4, atol: 1e-5), $"max difference {(folded - expected).abs().max().item<float>()}");
        Assert.IsFalse(Same(folded, expected), "the folded convolutions ran (a bit-identical result would mean they did not)");
        foreach (var (name, tensor) in model.state_dict())
            Assert.IsTrue(Same(tensor, before[name]), $"{name} was changed by folding");

        model.FoldFrozenNormalization(null);
        using var unfolded = model.call(input);
        Assert.IsTrue(Same(unfolded, expected), "unfolded, the model computes exactly what it did before");

        // Training mode normalises with the batch's statistics, folded copy or not (it also updates the running ones).
        model.train();
        using var trainingMode = model.call(input);
        model.FoldFrozenNormalization(model.Stages.Count);
        using var trainingFolded = model.call(input);
        Assert.IsTrue(Same(trainingFolded, trainingMode), "in training mode the folded copy is not used");
        model.FoldFrozenNormalization(null);
    }

    private static bool Same(Tensor a, Tensor b) => a.eq(b).all().item<bool>();

    // Running statistics and affine far from the initial 0/1, so that folding has something to fold.
    private static void RandomizeStatistics(RegNetModel model)
    {
        using var _ = no_grad();
        var generator = new Generator(5);
        foreach (var (name, tensor) in model.state_dict())
        {
            if (name.EndsWith("running_var", StringComparison.Ordinal) || name.EndsWith("bn.weight", StringComparison.Ordinal))
                tensor.copy_(rand(tensor.shape, generator: generator) + 0.5);
            else if (name.EndsWith("running_mean", StringComparison.Ordinal) || name.EndsWith("bn.bias", StringComparison.Ordinal))
                tensor.copy_(randn(tensor.shape, generator: generator) * 0.3);
        }
    }
}
