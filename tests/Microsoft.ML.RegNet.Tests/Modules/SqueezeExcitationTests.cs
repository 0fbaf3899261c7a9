using Microsoft.ML.RegNet.Modules;
using static Microsoft.ML.RegNet.Tests.Modules.ModuleTestMath;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Modules;

[TestClass]
public sealed class SqueezeExcitationTests
{
    [TestMethod]
    public void OutputIsTheInputScaledBySigmoidOfTheTwoLayerMlpOfItsChannelMeans()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(11);
        using var se = new SqueezeExcitation(channels: 12, squeezeChannels: 3);
        var x = randn(new long[] { 2, 12, 5, 7 }, generator: generator) + 0.3;

        // x · sigmoid(fc2(relu(fc1(mean)))) with the 1×1 convolutions written as matrix products.
        var w1 = se.Squeeze.weight!.reshape(3, 12);
        var w2 = se.Excite.weight!.reshape(12, 3);
        var mean = x.sum(new long[] { 2, 3 }) / (5 * 7);
        var hidden = (mean.matmul(w1.t()) + se.Squeeze.bias!).clamp_min(0);
        var gate = 1 / (1 + (-(hidden.matmul(w2.t()) + se.Excite.bias!)).exp());
        var expected = x * gate.reshape(2, 12, 1, 1);

        var y = se.call(x);
        CollectionAssert.AreEqual(x.shape, y.shape);
        Assert.IsLessThan(1e-5, MaxDifference(y, expected));
    }

    [TestMethod]
    public void ParametersAreTwoBiasedOneByOneConvolutions()
    {
        using var se = new SqueezeExcitation(16, 4);
        var shapes = se.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        CollectionAssert.AreEquivalent(new[] { "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias" }, shapes.Keys.ToArray());
        CollectionAssert.AreEqual(new long[] { 4, 16, 1, 1 }, shapes["fc1.weight"]);
        CollectionAssert.AreEqual(new long[] { 16, 4, 1, 1 }, shapes["fc2.weight"]);
    }
}
