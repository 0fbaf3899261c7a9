using System.Globalization;

namespace Microsoft.ML.RegNet.Tests.Configs;

/// <summary>The 24 specs against tests/fixtures/regnet_models.csv (computed with torchvision and pycls, checked against pycls's complexity file).</summary>
[TestClass]
public sealed class RegNetSpecTests
{
    private sealed record Row(string Name, int[] Depths, int[] Widths, int[] GroupWidths, long Params, long Macs);

    private static readonly Lazy<Row[]> Rows = new(() =>
    {
        var lines = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "fixtures", "regnet_models.csv"));
        var header = lines[0].Split(',');
        int Col(string name) => Array.IndexOf(header, name);
        static int[] Ints(string s) => s.Split(';').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        return lines.Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).Select(f => new Row(
            f[Col("name")], Ints(f[Col("stage_depths")]), Ints(f[Col("stage_widths")]), Ints(f[Col("stage_group_widths")]),
            long.Parse(f[Col("params")], CultureInfo.InvariantCulture), long.Parse(f[Col("macs")], CultureInfo.InvariantCulture))).ToArray();
    });

    public static IEnumerable<object[]> Names() => Rows.Value.Select(r => new object[] { r.Name });

    [TestMethod]
    public void AllListsTheTwentyFourModelsInKerasOrder()
    {
        CollectionAssert.AreEqual(Rows.Value.Select(r => r.Name).ToArray(), RegNetSpec.All.Select(s => s.Name).ToArray());
    }

    [TestMethod]
    [DynamicData(nameof(Names))]
    public void StagesParametersAndFlopsEqualTheReference(string name)
    {
        var row = Rows.Value.Single(r => r.Name == name);
        var spec = RegNetSpec.FromName(name);
        CollectionAssert.AreEqual(row.Depths, spec.StageDepths.ToArray(), "depths");
        CollectionAssert.AreEqual(row.Widths, spec.StageWidths.ToArray(), "widths");
        CollectionAssert.AreEqual(row.GroupWidths, spec.StageGroupWidths.ToArray(), "group widths");
        Assert.AreEqual(row.Params, spec.ParameterCount(1000), "parameters");
        Assert.AreEqual(row.Macs, spec.Flops(224), "multiply-accumulates at 224");
    }

    [TestMethod]
    public void X080FirstStageGroupWidthIsClippedToOneGroup()
    {
        var spec = RegNetSpec.FromName("X080");
        Assert.AreEqual(120, spec.GroupWidth);
        Assert.AreEqual(80, spec.StageGroupWidths[0]);
        Assert.AreEqual(1, spec.Blocks[0].Groups);
    }

    [TestMethod]
    [DataRow("X002"), DataRow("x002"), DataRow("RegNetX002"), DataRow("regnetx_002"), DataRow("RegNetX-200MF"), DataRow("regnetx-200mf")]
    public void AcceptsEverySpelling(string name) => Assert.AreEqual("RegNetX002", RegNetSpec.FromName(name).Name);

    [TestMethod]
    [DataRow("Y016", "RegNetY-1.6GF"), DataRow("X320", "regnetx_320"), DataRow("Y120", "RegNetY-12GF")]
    public void SpellingsOfOneModelAgree(string shortName, string otherName) =>
        Assert.AreSame(RegNetSpec.FromName(shortName), RegNetSpec.FromName(otherName));

    [TestMethod]
    public void UnknownNameListsTheValidOnes()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => RegNetSpec.FromName("X003"));
        StringAssert.Contains(e.Message, "X003");
        StringAssert.Contains(e.Message, "X002");
        StringAssert.Contains(e.Message, "Y320");
    }

    [TestMethod]
    public void TorchVisionRoundingGivesTorchVisionWidths()
    {
        // regnet_y_800mf and regnet_x_400mf in torchvision (reference §4).
        CollectionAssert.AreEqual(new[] { 64, 144, 320, 784 }, RegNetSpec.FromName("Y008", WidthRounding.TorchVision).StageWidths.ToArray());
        CollectionAssert.AreEqual(new[] { 32, 64, 160, 400 }, RegNetSpec.FromName("X004", WidthRounding.TorchVision).StageWidths.ToArray());
        Assert.AreEqual(6_432_512, RegNetSpec.FromName("Y008", WidthRounding.TorchVision).ParameterCount());
    }

    [TestMethod]
    public void CustomSpecFollowsTheWidthRule()
    {
        // u = 16, 32, 48, 64, 80, 96; k = round(log2(u/16)) = 0, 1, 2, 2, 2, 3 → widths 16, 32, 64, 128.
        var spec = RegNetSpec.Create(depth: 6, w0: 16, wa: 16, wm: 2, groupWidth: 8, seRatio: 0.25);
        CollectionAssert.AreEqual(new[] { 1, 1, 3, 1 }, spec.StageDepths.ToArray());
        CollectionAssert.AreEqual(new[] { 16, 32, 64, 128 }, spec.StageWidths.ToArray());
        Assert.AreEqual(0.25, spec.SeRatio);
        Assert.AreEqual(8, spec.Blocks[0].SeWidth); // round(0.25 × 32): the block input width, not the bottleneck
        Assert.AreEqual(4, spec.Blocks[1].SeWidth);
    }

    [TestMethod]
    [DataRow(0, 16, 16.0, 2.0, 8, "depth")]
    [DataRow(6, 12, 16.0, 2.0, 8, "w0")]
    [DataRow(6, 16, -1.0, 2.0, 8, "wa")]
    [DataRow(6, 16, 16.0, 1.0, 8, "wm")]
    [DataRow(6, 16, 16.0, 2.0, 0, "groupWidth")]
    public void InvalidDesignParametersAreRejected(int depth, double w0, double wa, double wm, int g, string parameter)
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => RegNetSpec.Create(depth, w0, wa, wm, g));
        Assert.AreEqual(parameter, e.ParamName);
    }
}
