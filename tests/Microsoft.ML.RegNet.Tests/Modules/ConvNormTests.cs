using Microsoft.ML.RegNet.Modules;
using static Microsoft.ML.RegNet.Tests.Modules.ModuleTestMath;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Modules;

[TestClass]
public sealed class ConvNormTests
{
    private const double Tolerance = 1e-4;

    [TestMethod]
    [DataRow(1, 8, 8)]
    [DataRow(2, 8, 7)]
    [DataRow(2, 7, 9)]
    public void SymmetricPaddingIsOnePixelOnEverySide(int stride, int height, int width)
    {
        using var scope = NewDisposeScope();
        var (module, x) = Build(kernel: 3, stride, height, width);
        var expected = nn.functional.relu(BatchNorm(nn.functional.conv2d(x, module.Conv.weight!, null, strides: new long[] { stride, stride }, padding: new long[] { 1, 1 }), module.Norm));
        var y = module.call(x);
        CollectionAssert.AreEqual(new long[] { 2, 6, (height - 1) / stride + 1, (width - 1) / stride + 1 }, y.shape);
        Assert.IsLessThan(Tolerance, MaxDifference(y, expected));
    }

    // TensorFlow "same": output ceil(n / s); the total padding max((out − 1)·s + k − n, 0) is split with the odd pixel after.
    [TestMethod]
    [DataRow(2, 8, 0, 1, 4)]
    [DataRow(2, 7, 1, 1, 4)]
    [DataRow(2, 9, 1, 1, 5)]
    [DataRow(2, 10, 0, 1, 5)]
    [DataRow(3, 8, 0, 1, 3)]
    [DataRow(3, 9, 0, 0, 3)]
    [DataRow(3, 7, 1, 1, 3)]
    public void TensorFlowSamePadsAsTensorFlowDoes(int stride, int size, int before, int after, int outSize)
    {
        using var scope = NewDisposeScope();
        // Height and width differ, so the padding must be worked out per axis.
        int width = size + 1, widthTotal = Math.Max(((width + stride - 1) / stride - 1) * stride + 3 - width, 0);
        var (module, x) = Build(kernel: 3, stride, size, width);
        module.Padding = PaddingStyle.TensorFlowSame;
        var padded = nn.functional.pad(x, new long[] { widthTotal / 2, widthTotal - widthTotal / 2, before, after });
        var expected = nn.functional.relu(BatchNorm(nn.functional.conv2d(padded, module.Conv.weight!, null, strides: new long[] { stride, stride }), module.Norm));
        var y = module.call(x);
        Assert.AreEqual(outSize, y.shape[2]);
        Assert.AreEqual((width + stride - 1) / stride, y.shape[3]);
        Assert.IsLessThan(Tolerance, MaxDifference(y, expected));
        if (before != after)
        {
            // Symmetric padding gives different numbers here: the test tells the two styles apart.
            module.Padding = PaddingStyle.Symmetric;
            var symmetric = module.call(x);
            Assert.IsTrue(!symmetric.shape.SequenceEqual(y.shape) || MaxDifference(symmetric, y) > 1e-2);
        }
    }

    [TestMethod]
    [DataRow(1, 2)]
    [DataRow(3, 1)]
    public void StylesAgreeWhereOnlyStridedLargeKernelsDiffer(int kernel, int stride)
    {
        using var scope = NewDisposeScope();
        var (module, x) = Build(kernel, stride, 8, 8);
        var symmetric = module.call(x);
        module.Padding = PaddingStyle.TensorFlowSame;
        Assert.AreEqual(0, MaxDifference(symmetric, module.call(x)));
    }

    [TestMethod]
    public void WithoutActivationNegativeValuesPassAndGroupsSplitTheChannels()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(3);
        using var module = new ConvNorm(8, 8, 3, 1, groups: 4, activate: false);
        module.eval();
        Randomize(module.Norm, generator);
        var x = randn(new long[] { 1, 8, 5, 5 }, generator: generator);
        CollectionAssert.AreEqual(new long[] { 8, 2, 3, 3 }, module.Conv.weight!.shape, "grouped weight is out × in/groups × k × k");
        var y = module.call(x);
        Assert.IsLessThan(0f, y.min().item<float>());
        var expected = BatchNorm(nn.functional.conv2d(x, module.Conv.weight!, null, padding: new long[] { 1, 1 }, groups: 4), module.Norm);
        Assert.IsLessThan(Tolerance, MaxDifference(y, expected));
        Assert.IsFalse(module.Activates);
        Assert.IsNull(module.Conv.bias, "the BatchNorm carries the bias");
    }

    private static (ConvNorm Module, Tensor Input) Build(int kernel, int stride, int height, int width)
    {
        var generator = new Generator(20260101);
        var module = new ConvNorm(4, 6, kernel, stride);
        module.eval();
        Randomize(module.Norm, generator);
        return (module, randn(new long[] { 2, 4, height, width }, generator: generator));
    }
}
