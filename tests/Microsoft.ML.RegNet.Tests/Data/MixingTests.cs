using Microsoft.ML.RegNet.Data.Mixing;
using Microsoft.ML.RegNet.Data.Transforms;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Data;

[TestClass]
public sealed class MixingTests
{
    [TestMethod]
    [DataRow(0.2)]
    [DataRow(0.4)]
    [DataRow(1.0)]
    public void MixupLambdaFollowsBetaAlphaAlpha(double alpha)
    {
        var mixer = new BatchMixer(new MixingOptions { MixupAlpha = alpha }, numberOfClasses: 10);
        var rng = new AugmentationRandom(5);
        const int n = 20000;
        double sum = 0, sumSq = 0;
        for (int i = 0; i < n; i++)
        {
            double l = mixer.Sample(4, 8, 8, rng).Lambda;
            Assert.IsTrue(l >= 0 && l <= 1);
            sum += l;
            sumSq += l * l;
        }
        double mean = sum / n, variance = sumSq / n - mean * mean;
        double expectedVariance = 1 / (4 * (2 * alpha + 1)); // Beta(α, α): mean 1/2, variance 1/(4(2α+1))
        Assert.AreEqual(0.5, mean, 4 * Math.Sqrt(expectedVariance / n));
        Assert.AreEqual(expectedVariance, variance, 0.05 * expectedVariance);
    }

    [TestMethod]
    public void MixupMixesWithTheReversedBatchAndTargetsSumToOne()
    {
        using var scope = NewDisposeScope();
        var mixer = new BatchMixer(new MixingOptions { MixupAlpha = 0.4 }, numberOfClasses: 5, labelSmoothing: 0.1);
        var images = arange(4 * 3 * 2 * 2, dtype: ScalarType.Float32).reshape(4, 3, 2, 2);
        var labels = tensor(new long[] { 0, 1, 2, 4 });
        var (mixed, targets, d) = mixer.Mix(images, labels, new AugmentationRandom(9));
        CollectionAssert.AreEqual(new long[] { 3, 2, 1, 0 }, d.Partners);
        var expected = images * d.Lambda + images.flip(0) * (1 - d.Lambda);
        Assert.IsTrue(mixed.allclose(expected, rtol: 1e-5, atol: 1e-5));
        var rowSums = targets.sum(1).data<float>().ToArray();
        foreach (var s in rowSums) Assert.AreEqual(1.0, s, 1e-5);
        // Row 0 is class 0 with weight λ and class 4 (partner 3) with 1−λ, smoothed with ε/C = 0.02.
        var t0 = targets[0].data<float>().ToArray();
        Assert.AreEqual(0.02 + 0.9 * d.Lambda, t0[0], 1e-5);
        Assert.AreEqual(0.02 + 0.9 * (1 - d.Lambda), t0[4], 1e-5);
    }

    [TestMethod]
    public void RandomPermutationPartnersArePermutations()
    {
        var mixer = new BatchMixer(new MixingOptions { MixupAlpha = 0.2, Partner = MixupPartner.RandomPermutation }, 3);
        var d = mixer.Sample(16, 4, 4, new AugmentationRandom(2));
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 16).Select(i => (long)i).ToArray(), d.Partners);
    }

    [TestMethod]
    public void CutMixPastesTheBoxAndLambdaIsTheKeptArea()
    {
        using var scope = NewDisposeScope();
        var mixer = new BatchMixer(new MixingOptions { CutMixAlpha = 1.0 }, numberOfClasses: 2);
        var rng = new AugmentationRandom(4);
        var images = cat(new[] { zeros(1, 3, 8, 8), ones(1, 3, 8, 8) }, 0);
        var labels = tensor(new long[] { 0, 1 });
        for (int i = 0; i < 20; i++)
        {
            var (mixed, targets, d) = mixer.Mix(images, labels, rng);
            Assert.IsTrue(d.IsCutMix);
            double pasted = mixed[0].mean().item<float>(); // sample 0 is zeros, its partner ones
            Assert.AreEqual(1 - d.Lambda, pasted, 1e-6);
            Assert.AreEqual(d.Lambda, targets[0, 0].item<float>(), 1e-6);
            foreach (var s in targets.sum(1).data<float>().ToArray()) Assert.AreEqual(1.0, s, 1e-6);
        }
    }

    [TestMethod]
    public void WithoutMixingTargetsAreSmoothedOneHot()
    {
        using var scope = NewDisposeScope();
        var t = BatchMixer.ToTargets(tensor(new long[] { 2 }), 4, 0.2);
        CollectionAssert.AreEqual(new[] { 0.05f, 0.05f, 0.85f, 0.05f }, t[0].data<float>().ToArray());
        Assert.ThrowsExactly<ArgumentException>(() => BatchMixer.ToTargets(tensor(new long[] { 4 }), 4));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new BatchMixer(new MixingOptions { MixupAlpha = -1 }, 4));
    }
}
