using Microsoft.ML.RegNet.Weights.Layouts;

namespace Microsoft.ML.RegNet.Tests.Weights.Layouts;

/// <summary>timm ↔ torchvision ↔ pycls ↔ Keras names for the key sets of all 24 architectures.</summary>
[TestClass]
public sealed class StateDictLayoutTests
{
    private static IEnumerable<object[]> AllModels => RegNetSpec.All.Select(s => new object[] { s.Name });

    [TestMethod]
    [DynamicData(nameof(AllModels))]
    public void EveryLayoutMapsOneToOneAndRoundTripsThroughTheOthers(string model)
    {
        var spec = RegNetSpec.FromName(model);
        var maps = StateDictLayout.Known.ToDictionary(l => l.Name, l => l.TensorNames(spec, includeClassifier: true));
        var canonical = maps["timm"].Keys.ToHashSet();
        Assert.IsTrue(maps["timm"].All(kv => kv.Key == kv.Value), "timm is the canonical layout");
        foreach (var (name, map) in maps)
        {
            Assert.IsTrue(canonical.SetEquals(map.Keys), $"{name}: same canonical keys");
            Assert.HasCount(map.Count, map.Values.Distinct(), $"{name}: two tensors share a name");
        }
        // timm → torchvision → pycls → timm, through the inverse maps.
        var fromTorchVision = maps["torchvision"].ToDictionary(kv => kv.Value, kv => kv.Key);
        var fromPycls = maps["pycls"].ToDictionary(kv => kv.Value, kv => kv.Key);
        foreach (var key in canonical)
        {
            string torchvision = maps["torchvision"][key];
            string pycls = maps["pycls"][fromTorchVision[torchvision]];
            Assert.AreEqual(key, fromPycls[pycls]);
        }
        // Each layout's key set is recognised as that layout, never as another.
        foreach (var layout in StateDictLayout.Known)
            Assert.AreSame(layout, StateDictLayout.Detect(maps[layout.Name].Values), layout.Name);
    }

    [TestMethod]
    [DynamicData(nameof(AllModels))]
    public void KerasLayersAreTheCanonicalLayersInAnotherOrder(string model)
    {
        var spec = RegNetSpec.FromName(model);
        var keras = KerasLayout.Layers(spec, KerasLayout.ModelPrefix(spec), includeTop: true);
        var timm = StateDictLayout.Timm.Layers(spec, includeClassifier: true).ToList();
        CollectionAssert.AreEquivalent(timm.Select(l => (l.Canonical, l.Kind)).ToList(), keras.Select(l => (l.Canonical, l.Kind)).ToList());
        Assert.HasCount(keras.Count, keras.Select(l => l.KerasName).Distinct());
        // Keras carries the same tensors minus num_batches_tracked, which it does not have.
        int kerasTensors = keras.Sum(l => KerasLayout.WeightsOf[l.Kind].Length);
        int batchNorms = timm.Count(l => l.Kind == LayerKind.BatchNorm);
        Assert.AreEqual(StateDictLayout.Timm.TensorNames(spec, true).Count - batchNorms, kerasTensors);
        foreach (var kind in KerasLayout.WeightsOf.Keys)
            CollectionAssert.AreEqual(StateDictLayout.TensorsOf[kind].Where(t => t != "num_batches_tracked").ToArray(),
                KerasLayout.WeightsOf[kind].Select(w => KerasLayout.TensorNames[w]).ToArray(), kind.ToString());
    }

    [TestMethod]
    [DataRow("X002")]
    [DataRow("Y002")]
    [DataRow("Y004")]
    public void CanonicalNamesAreTheModelsStateDict(string model)
    {
        var spec = RegNetSpec.FromName(model);
        using var net = new RegNetModel(spec, numberOfClasses: 10);
        var modelKeys = net.state_dict().Keys.ToHashSet();
        var layoutKeys = StateDictLayout.Timm.TensorNames(spec, includeClassifier: true).Keys.ToHashSet();
        Assert.IsTrue(modelKeys.SetEquals(layoutKeys),
            $"only in the model: {string.Join(", ", modelKeys.Except(layoutKeys).Take(5))}; only in the layout: {string.Join(", ", layoutKeys.Except(modelKeys).Take(5))}");
    }

    [TestMethod]
    public void NamesOfEachEcosystem()
    {
        var spec = RegNetSpec.FromName("Y002"); // depths 1, 1, 4, 7
        var tv = StateDictLayout.TorchVision.TensorNames(spec, true);
        var pycls = StateDictLayout.Pycls.TensorNames(spec, true);
        Assert.AreEqual("stem.0.weight", tv["stem.conv.weight"]);
        Assert.AreEqual("stem.1.running_var", tv["stem.bn.running_var"]);
        Assert.AreEqual("trunk_output.block1.block1-0.f.a.0.weight", tv["s1.b1.conv1.conv.weight"]);
        Assert.AreEqual("trunk_output.block4.block4-6.f.c.1.num_batches_tracked", tv["s4.b7.conv3.bn.num_batches_tracked"]);
        Assert.AreEqual("trunk_output.block3.block3-0.proj.1.bias", tv["s3.b1.downsample.bn.bias"]);
        Assert.AreEqual("trunk_output.block2.block2-0.f.se.fc2.bias", tv["s2.b1.se.fc2.bias"]);
        Assert.AreEqual("fc.weight", tv["head.fc.weight"]);
        Assert.AreEqual("s1.b1.f.a_bn.running_mean", pycls["s1.b1.conv1.bn.running_mean"]);
        Assert.AreEqual("s3.b1.proj.weight", pycls["s3.b1.downsample.conv.weight"]);
        Assert.AreEqual("s3.b1.bn.weight", pycls["s3.b1.downsample.bn.weight"]);
        Assert.AreEqual("s4.b7.f.se.f_ex.2.weight", pycls["s4.b7.se.fc2.weight"]);
        Assert.AreEqual("head.fc.bias", pycls["head.fc.bias"]);
        // Only the first block of a stage projects its shortcut, and headless maps have no classifier.
        Assert.IsFalse(tv.ContainsKey("s3.b2.downsample.conv.weight"));
        Assert.IsFalse(StateDictLayout.TorchVision.TensorNames(spec, includeClassifier: false).ContainsKey("head.fc.weight"));
    }

    [TestMethod]
    public void UnknownKeySetsAreNotDetected() =>
        Assert.IsNull(StateDictLayout.Detect(new[] { "features.0.weight", "classifier.weight" }));
}
