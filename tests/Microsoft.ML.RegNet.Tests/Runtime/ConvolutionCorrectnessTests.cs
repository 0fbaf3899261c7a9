using Microsoft.ML.RegNet.Runtime;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Runtime;

/// <summary>
/// libtorch 2.10's oneDNN kernels compute some 3×3 convolutions wrongly (found by the torchvision equivalence test);
/// after <see cref="TorchRuntime.Configure"/> every RegNet-shaped convolution must agree with float64.
/// </summary>
[TestClass]
public sealed class ConvolutionCorrectnessTests
{
    public static IEnumerable<object[]> Shapes()
    {
        foreach (int groups in new[] { 1, 2, 7 })
            foreach (int perGroup in new[] { 8, 24, 40, 56, 120 })
                foreach (int stride in new[] { 1, 2 })
                    yield return new object[] { perGroup, groups, stride, 3, 12 };
        foreach (int channels in new[] { 8, 24, 40, 56, 120 }) // the 1×1 convolutions of every block and shortcut
            foreach (int stride in new[] { 1, 2 })
                yield return new object[] { channels, 1, stride, 1, 12 };
        // Wide ungrouped convolutions on the small maps of late stages: oneDNN's AVX2 channels-last kernels get these wrong,
        // so they are checked in the layout the model uses too.
        foreach (int channels in new[] { 368, 1008 })
            foreach (int kernel in new[] { 1, 3 })
                foreach (int size in new[] { 3, 6 })
                    yield return new object[] { channels, 1, 1, kernel, size };
    }

    [TestMethod]
    [DynamicData(nameof(Shapes))]
    public void ForwardAndGradientsMatchFloat64(int perGroup, int groups, int stride, int kernel, int size)
    {
        TorchRuntime.Configure();
        using var scope = NewDisposeScope();
        var generator = new Generator(7);
        int channels = perGroup * groups;
        int batch = size >= 12 ? 2 : 8;
        var x = randn(new long[] { batch, channels, size, size }, generator: generator).requires_grad_();
        var w = randn(new long[] { channels, perGroup, kernel, kernel }, generator: generator).requires_grad_();
        var x64 = x.detach().to_type(ScalarType.Float64).requires_grad_();
        var w64 = w.detach().to_type(ScalarType.Float64).requires_grad_();
        var y = nn.functional.conv2d(x, w, null, strides: new long[] { stride, stride }, padding: new long[] { kernel / 2, kernel / 2 }, groups: groups);
        var y64 = nn.functional.conv2d(x64, w64, null, strides: new long[] { stride, stride }, padding: new long[] { kernel / 2, kernel / 2 }, groups: groups);
        var upstream = randn(y.shape, generator: generator);
        (y * upstream).sum().backward();
        (y64 * upstream.to_type(ScalarType.Float64)).sum().backward();

        double Error(Tensor a, Tensor b) => (a.to_type(ScalarType.Float64) - b).abs().max().item<double>() / Math.Max(1, b.abs().max().item<double>());
        Assert.IsLessThan(1e-4, Error(y.detach(), y64.detach()), $"forward; {TorchRuntime.ConvolutionSelfTest}");
        Assert.IsLessThan(1e-4, Error(x.grad!, x64.grad!), $"input gradient; {TorchRuntime.ConvolutionSelfTest}");
        Assert.IsLessThan(1e-4, Error(w.grad!, w64.grad!), $"weight gradient; {TorchRuntime.ConvolutionSelfTest}");
    }
}
