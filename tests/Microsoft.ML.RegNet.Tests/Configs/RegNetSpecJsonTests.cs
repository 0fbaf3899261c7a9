using System.Text.Json;

namespace Microsoft.ML.RegNet.Tests.Configs;

[TestClass]
public sealed class RegNetSpecJsonTests
{
    [TestMethod]
    public void EveryZooModelRoundTripsInBothRoundings()
    {
        foreach (var rounding in new[] { WidthRounding.Nearest, WidthRounding.TorchVision })
            foreach (var entry in RegNetZoo.Entries)
            {
                var spec = RegNetSpec.FromName(entry.KerasName, rounding);
                var copy = RegNetSpec.FromJson(spec.ToJson());
                Assert.AreEqual(spec, copy, entry.KerasName);
                Assert.AreEqual(spec.Name, copy.Name);
                Assert.AreEqual(rounding, copy.Rounding);
                Assert.AreEqual((spec.Depth, spec.W0, spec.WA, spec.WM, spec.GroupWidth, spec.BottleneckRatio, spec.SeRatio),
                    (copy.Depth, copy.W0, copy.WA, copy.WM, copy.GroupWidth, copy.BottleneckRatio, copy.SeRatio));
            }
    }

    // The weight files' regnetml.spec entry: changing this text changes the file format.
    [TestMethod]
    public void WritesTheWeightFileForm()
    {
        Assert.AreEqual(
            """{"name":"RegNetX004_tv","depth":22,"w0":24,"wa":24.48,"wm":2.54,"group_width":16,"bottleneck_ratio":1,"se_ratio":0,"rounding":"torchvision"}""",
            RegNetSpec.FromName("X004", WidthRounding.TorchVision).ToJson());
    }

    [TestMethod]
    [DataRow("torchvision", WidthRounding.TorchVision)]
    [DataRow("TorchVision", WidthRounding.TorchVision)]
    [DataRow("nearest", WidthRounding.Nearest)]
    [DataRow("Nearest", WidthRounding.Nearest)]
    [DataRow(null, WidthRounding.Nearest)]
    public void ReadsEverySpellingOfTheRounding(string? name, WidthRounding expected)
    {
        string rounding = name is null ? "" : $",\"rounding\":\"{name}\"";
        var spec = RegNetSpec.FromJson($$"""{"depth":22,"w0":24,"wa":24.48,"wm":2.54,"group_width":16,"bottleneck_ratio":1,"se_ratio":0{{rounding}}}""");
        Assert.AreEqual(expected, spec.Rounding);
        Assert.AreEqual(RegNetSpec.FromName("X004", expected), spec);
    }

    [TestMethod]
    public void DamagedJsonIsRefusedWithTheReason()
    {
        const string Good = """{"depth":4,"w0":16,"wa":8,"wm":2,"group_width":8,"bottleneck_ratio":1,"se_ratio":0.25}""";
        _ = RegNetSpec.FromJson(Good);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => RegNetSpec.FromJson(Good.Replace("\"depth\":4,", ""))).Message, "'depth'");
        Assert.ThrowsExactly<InvalidDataException>(() => RegNetSpec.FromJson(Good.Replace("\"depth\":4", "\"depth\":\"four\"")));
        Assert.ThrowsExactly<InvalidDataException>(() => RegNetSpec.FromJson(Good.Replace("\"se_ratio\":0.25", "\"se_ratio\":0.25,\"rounding\":\"up\"")));
        Assert.ThrowsExactly<InvalidDataException>(() => RegNetSpec.FromJson("[]"));
        Assert.ThrowsExactly<ArgumentException>(() => RegNetSpec.FromJson(Good.Replace("\"depth\":4", "\"depth\":0")));
        Assert.Throws<JsonException>(() => RegNetSpec.FromJson("{\"depth\":"));
    }
}
