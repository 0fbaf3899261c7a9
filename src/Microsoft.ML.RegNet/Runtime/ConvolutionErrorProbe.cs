using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Runtime;

/// <summary>
/// Compares float32 3×3 convolutions (forward and input gradient) with float64 on shapes that libtorch 2.10's oneDNN
/// kernels get wrong on x86-64: ungrouped with input channels not a multiple of 16, and grouped stride-2 backward.
/// </summary>
internal static class ConvolutionErrorProbe
{
    /// <summary>Float32 rounding on these sizes stays far below this; the broken kernels are off by about 10.</summary>
    public const double Tolerance = 1e-2;

    // (channels per group, groups, stride)
    private static readonly (int ChannelsPerGroup, int Groups, int Stride)[] Cases = { (24, 1, 1), (24, 1, 2), (40, 2, 2) };

    public static double MaxError()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(20260101);
        double worst = 0;
        foreach (var (perGroup, groups, stride) in Cases)
        {
            int channels = perGroup * groups;
            var x = randn(new long[] { 2, channels, 8, 8 }, generator: generator).requires_grad_();
            var w = randn(new long[] { channels, perGroup, 3, 3 }, generator: generator);
            var x64 = x.detach().to_type(ScalarType.Float64).requires_grad_();
            var w64 = w.to_type(ScalarType.Float64);
            var y = nn.functional.conv2d(x, w, null, strides: new long[] { stride, stride }, padding: new long[] { 1, 1 }, groups: groups);
            var y64 = nn.functional.conv2d(x64, w64, null, strides: new long[] { stride, stride }, padding: new long[] { 1, 1 }, groups: groups);
            var upstream = randn(y.shape, generator: generator);
            (y * upstream).sum().backward();
            (y64 * upstream.to_type(ScalarType.Float64)).sum().backward();
            worst = Math.Max(worst, (y.detach().to_type(ScalarType.Float64) - y64.detach()).abs().max().item<double>());
            worst = Math.Max(worst, (x.grad!.to_type(ScalarType.Float64) - x64.grad!).abs().max().item<double>());
        }
        return worst;
    }
}
