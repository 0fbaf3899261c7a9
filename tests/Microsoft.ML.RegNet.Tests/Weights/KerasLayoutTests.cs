using Microsoft.ML.RegNet.Weights.Layouts;

namespace Microsoft.ML.RegNet.Tests.Weights;

/// <summary>The Keras layer list as data, against the counts of regnet_models.md §7.</summary>
[TestClass]
public sealed class KerasLayoutTests
{
    [TestMethod]
    [DataRow("X002", 89, 222)]
    [DataRow("Y002", 115, 274)]
    [DataRow("X080", 149, 372)]
    [DataRow("Y320", 171, 407)]
    public void LayerAndArrayCountsMatchKeras(string model, int layers, int arrays)
    {
        var spec = RegNetSpec.FromName(model);
        var list = KerasLayout.Layers(spec, KerasLayout.ModelPrefix(spec), includeTop: true);
        Assert.HasCount(layers, list);
        Assert.AreEqual(arrays, list.Sum(l => KerasLayout.WeightsOf[l.Kind].Length));
        Assert.HasCount(layers - 1, KerasLayout.Layers(spec, "m", includeTop: false));
    }

    [TestMethod]
    public void NamesFollowKerasApplications()
    {
        var spec = RegNetSpec.FromName("Y002");
        var names = KerasLayout.Layers(spec, KerasLayout.ModelPrefix(spec), includeTop: true).Select(l => l.KerasName).ToList();
        Assert.AreEqual("regnety002_stem_conv", names[0]);
        Assert.AreEqual("regnety002_stem_bn", names[1]);
        Assert.Contains("regnety002_Stage_0_YBlock_0_squeeze_and_excite_squeeze", names);
        Assert.Contains("regnety002_Stage_3_YBlock_0_skip_bn", names);
        Assert.AreEqual("1head_dense", names[^1]);
        // Keras orders a functional model's layers by depth: the projection follows the last 1×1 conv.
        int conv = names.IndexOf("regnety002_Stage_0_YBlock_0_conv_1x1_2");
        Assert.AreEqual("regnety002_Stage_0_YBlock_0_skip_1x1", names[conv + 1]);
        Assert.AreEqual("regnety002_Stage_0_YBlock_0_conv_1x1_2_bn", names[conv + 2]);
    }
}
