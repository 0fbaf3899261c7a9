using Microsoft.ML.RegNet.Modules;
using static Microsoft.ML.RegNet.Tests.Modules.ModuleTestMath;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Modules;

/// <summary>Bottleneck and RegStage against the block descriptions of a zoo spec (RegNetY-200MF: depths 1, 1, 4, 7).</summary>
[TestClass]
public sealed class BottleneckTests
{
    private static RegNetSpec Spec => RegNetSpec.FromName("Y002");

    [TestMethod]
    public void EveryBlockOfTheSpecGetsItsWidthsGroupsSqueezeAndShortcut()
    {
        foreach (var spec in new[] { RegNetSpec.FromName("X004"), Spec })
            foreach (var b in spec.Blocks)
            {
                using var block = new Bottleneck(b);
                CollectionAssert.AreEqual(new long[] { b.BottleneckWidth, b.InWidth, 1, 1 }, block.Conv1.Conv.weight!.shape);
                CollectionAssert.AreEqual(new long[] { b.BottleneckWidth, b.GroupWidth, 3, 3 }, block.Conv2.Conv.weight!.shape, "groups of GroupWidth channels");
                Assert.AreEqual(b.BottleneckWidth / b.GroupWidth, block.Conv2.Conv.groups);
                Assert.AreEqual(b.Stride, block.Conv2.Stride);
                CollectionAssert.AreEqual(new long[] { b.OutWidth, b.BottleneckWidth, 1, 1 }, block.Conv3.Conv.weight!.shape);
                Assert.IsFalse(block.Conv3.Activates, "ReLU comes after the sum");
                Assert.AreEqual(b.Index == 1, block.Downsample is not null, $"{spec.Name} s{b.Stage}.b{b.Index}: only a stage's first block projects");
                if (block.Downsample is { } d)
                {
                    Assert.AreEqual(b.Stride, d.Stride);
                    CollectionAssert.AreEqual(new long[] { b.OutWidth, b.InWidth, 1, 1 }, d.Conv.weight!.shape);
                }
                Assert.AreEqual(spec.HasSqueezeExcitation, block.SqueezeExcitation is not null);
                if (block.SqueezeExcitation is { } se)
                    CollectionAssert.AreEqual(new long[] { b.SeWidth, b.BottleneckWidth, 1, 1 }, se.Squeeze.weight!.shape);
            }
    }

    [TestMethod]
    public void WithASilencedBranchTheBlockPassesItsShortcutThroughReLU()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(17);
        var identity = Spec.Blocks.First(b => b.Stage == 3 && b.Index == 2);
        var projecting = Spec.Blocks.First(b => b.Stage == 3 && b.Index == 1);
        foreach (var b in new[] { identity, projecting })
        {
            using var block = new Bottleneck(b);
            block.eval();
            foreach (var cn in new[] { block.Conv1, block.Conv2, block.Conv3, block.Downsample }.OfType<ConvNorm>()) Randomize(cn.Norm, generator);
            using (no_grad())
            {
                block.Conv3.Norm.weight!.zero_();
                block.Conv3.Norm.bias!.zero_();
            }
            var x = randn(new long[] { 2, b.InWidth, 9, 9 }, generator: generator);
            var shortcut = block.Downsample is { } d ? d.call(x) : x;
            var y = block.call(x);
            int size = (9 - 1) / b.Stride + 1;
            CollectionAssert.AreEqual(new long[] { 2, b.OutWidth, size, size }, y.shape);
            Assert.IsLessThan(1e-5, MaxDifference(y, shortcut.clamp_min(0)));
        }
    }

    [TestMethod]
    public void TheBlockIsReLUOfBranchPlusShortcut()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(23);
        var b = Spec.Blocks.First(x => x.Stage == 2);
        using var block = new Bottleneck(b);
        block.eval();
        foreach (var cn in new[] { block.Conv1, block.Conv2, block.Conv3, block.Downsample! }) Randomize(cn.Norm, generator);
        var x = randn(new long[] { 1, b.InWidth, 8, 8 }, generator: generator);
        var branch = block.Conv3.call(block.SqueezeExcitation!.call(block.Conv2.call(block.Conv1.call(x))));
        var expected = (branch + block.Downsample!.call(x)).clamp_min(0);
        Assert.IsLessThan(1e-5, MaxDifference(block.call(x), expected));
    }

    [TestMethod]
    public void AStageChainsItsBlocksUnderTheirOneBasedNames()
    {
        using var scope = NewDisposeScope();
        var blocks = Spec.Blocks.Where(b => b.Stage == 3).ToList();
        using var stage = new RegStage(blocks);
        stage.eval();
        Assert.HasCount(4, stage.Blocks);
        var prefixes = stage.state_dict().Keys.Select(k => k.Split('.')[0]).Distinct().ToArray();
        CollectionAssert.AreEqual(new[] { "b1", "b2", "b3", "b4" }, prefixes);
        var x = randn(new long[] { 1, blocks[0].InWidth, 8, 8 }, generator: new Generator(29));
        var expected = x;
        foreach (var block in stage.Blocks) expected = block.call(expected);
        var y = stage.call(x);
        CollectionAssert.AreEqual(new long[] { 1, blocks[0].OutWidth, 4, 4 }, y.shape);
        Assert.AreEqual(0, MaxDifference(y, expected));
    }
}
