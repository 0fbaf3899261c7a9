using Microsoft.ML.RegNet.Modules;
using static Microsoft.ML.RegNet.Tests.Modules.ModuleTestMath;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Modules;

[TestClass]
public sealed class ClassifierHeadTests
{
    [TestMethod]
    public void LogitsArePooledFeaturesTimesTheTransposedWeightPlusBias()
    {
        using var scope = NewDisposeScope();
        using var head = new ClassifierHead(features: 6, classes: 3);
        var x = randn(new long[] { 4, 6 }, generator: new Generator(5));
        var w = head.Fc.weight!;
        var expected = zeros(4, 3);
        for (int n = 0; n < 4; n++)
            for (int k = 0; k < 3; k++)
                expected[n, k] = (x[n] * w[k]).sum() + head.Fc.bias![k];
        Assert.IsLessThan(1e-5, MaxDifference(head.call(x), expected));
        CollectionAssert.AreEquivalent(new[] { "fc.weight", "fc.bias" }, head.state_dict().Keys.ToArray());
        CollectionAssert.AreEqual(new long[] { 3, 6 }, w.shape);
    }
}
