using Microsoft.ML.RegNet.Distributed;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Distributed;

/// <summary>SyncBatchNorm on one rank (MPI's singleton mode) against libtorch's own BatchNorm2d in training mode: the
/// same output, input, weight and bias gradients and running statistics. The multi-rank equivalence is in
/// <see cref="MultiRankTests"/>.</summary>
[TestClass]
public sealed class SyncBatchNormTests
{
    [TestMethod]
    public void OnOneRankItComputesWhatLibtorchsBatchNormComputes()
    {
        if (MpiLibrary.TryLoad(out string? problem) is null) Assert.Inconclusive($"MPI is not installed here: {problem}");
        using var generator = new Generator(5);
        using var reference = nn.BatchNorm2d(6, eps: 1e-5, momentum: 0.1);
        using var synced = nn.BatchNorm2d(6, eps: 1e-5, momentum: 0.1);
        using (no_grad())
        {
            foreach (var norm in new[] { reference, synced })
            {
                norm.weight!.copy_(linspace(0.5, 2.0, 6));
                norm.bias!.copy_(linspace(-1, 1, 6));
            }
        }
        reference.train();
        // An offset and scale per channel, so that the statistics are not those of a standard normal.
        using var input = randn(new long[] { 4, 6, 5, 5 }, generator: generator) * 3 + arange(6).view(1, 6, 1, 1);
        using var upstream = randn(new long[] { 4, 6, 5, 5 }, generator: generator);
        using var x1 = input.clone().requires_grad_();
        using var x2 = input.clone().requires_grad_();

        using var y1 = reference.call(x1);
        using var y2 = new SyncBatchNorm(MpiWorld.Get()).Forward(x2, synced);
        (y1 * upstream).sum().backward();
        (y2 * upstream).sum().backward();

        AssertClose(y1, y2, 1e-5, "output");
        AssertClose(x1.grad!, x2.grad!, 1e-5, "input gradient");
        AssertClose(reference.weight!.grad!, synced.weight!.grad!, 1e-4, "weight gradient");
        AssertClose(reference.bias!.grad!, synced.bias!.grad!, 1e-4, "bias gradient");
        AssertClose(reference.running_mean!, synced.running_mean!, 1e-6, "running mean");
        AssertClose(reference.running_var!, synced.running_var!, 1e-5, "running variance (unbiased)");
        Assert.AreEqual(reference.num_batches_tracked!.item<long>(), synced.num_batches_tracked!.item<long>(), "batches tracked");
    }

    private static void AssertClose(Tensor expected, Tensor actual, double limit, string what)
    {
        double difference = (expected - actual).abs().max().item<float>();
        Console.WriteLine($"{what}: {difference:E2}");
        Assert.IsLessThanOrEqualTo(limit, difference, $"{what} differs from libtorch's BatchNorm2d by {difference:E2}");
        Assert.IsGreaterThan(0.0, expected.abs().max().item<float>(), $"{what} must not be zero for the comparison to mean something");
    }
}
