using Microsoft.ML.RegNet.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Onnx;

/// <summary>The one padding rule that ConvNorm's forward pass and its ONNX export share.</summary>
[TestClass]
public sealed class ConvNormPaddingTests
{
    [TestMethod]
    [DataRow(PaddingStyle.TensorFlowSame, 64, 0L, 1L, 32L)]
    [DataRow(PaddingStyle.TensorFlowSame, 65, 1L, 1L, 33L)]
    [DataRow(PaddingStyle.Symmetric, 64, 1L, 1L, 32L)]
    [DataRow(PaddingStyle.Symmetric, 65, 1L, 1L, 33L)]
    public void StridedThreeByThreePadsAndOutputSizeMatchTheForwardPass(PaddingStyle style, int size, long before, long after, long output)
    {
        using var conv = new ConvNorm(3, 4, 3, stride: 2) { Padding = style };
        conv.eval();
        Assert.AreEqual((before, after), conv.PadsFor(size));
        Assert.AreEqual(output, conv.OutputSize(size));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var y = conv.call(ones(1, 3, size, size + 1));
        CollectionAssert.AreEqual(new[] { 1L, 4L, output, conv.OutputSize(size + 1) }, y.shape);
    }

    [TestMethod]
    public void UnstridedOrPointwiseConvolutionsPadTheSameInBothStyles()
    {
        using var pointwise = new ConvNorm(3, 4, 1, stride: 2) { Padding = PaddingStyle.TensorFlowSame };
        using var unstrided = new ConvNorm(3, 4, 3) { Padding = PaddingStyle.TensorFlowSame };
        Assert.AreEqual((0L, 0L), pointwise.PadsFor(64));
        Assert.AreEqual((1L, 1L), unstrided.PadsFor(64));
        Assert.AreEqual(32L, pointwise.OutputSize(64));
        Assert.AreEqual(64L, unstrided.OutputSize(64));
    }
}
