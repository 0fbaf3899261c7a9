using System.Text.RegularExpressions;
using RegNetML.Tool.Plotting;
using SkiaSharp;

namespace RegNetML.Tool.Tests;

[TestClass]
public sealed class CompareCommandTests
{
    private string _workspace = "";
    private string _first = "", _second = "";

    [TestInitialize]
    public void WriteRuns()
    {
        _workspace = FakeRuns.Workspace();
        _first = FakeRuns.Write(_workspace, "20261127-100000-RegNetX002", "RegNetX002", 1e-3, new[] { 0.40, 0.55, 0.60 });
        _second = FakeRuns.Write(_workspace, "20261128-100000-RegNetX002", "RegNetX002", 3e-3, new[] { 0.50, 0.71, 0.74 });
    }

    [TestCleanup]
    public void Remove() => Directory.Delete(_workspace, recursive: true);

    [TestMethod]
    public void WritesOneSelfContainedPageWithTheChartsAndTheHyperparameterTable()
    {
        string report = Path.Combine(_workspace, "report.html");
        // One run by folder, one by name under the workspace.
        var run = ToolRun.Invoke("compare", _first, "20261128-100000-RegNetX002", "-w", _workspace, "-o", report);
        Assert.AreEqual(0, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, $"report: {report} (2 runs)");
        string html = File.ReadAllText(report);
        var images = Regex.Matches(html, "src=\"data:image/png;base64,([^\"]+)\"");
        Assert.HasCount(3, images, "top-1, loss and learning-rate charts");
        foreach (Match image in images)
        {
            using var bitmap = SKBitmap.Decode(Convert.FromBase64String(image.Groups[1].Value));
            Assert.AreEqual(960, bitmap.Width);
            Assert.IsGreaterThan(100, ChartPixels.Count(bitmap, ChartPixels.Blue), "the first run's line is drawn");
            Assert.IsGreaterThan(100, ChartPixels.Count(bitmap, ChartPixels.Orange), "the second run's line is drawn");
        }
        StringAssert.DoesNotMatch(html, new Regex(@"<script|<link|https?://|src=""(?!data:)", RegexOptions.IgnoreCase), "nothing to fetch, nothing to run");
        StringAssert.Matches(html, new Regex(@"<tr class=""differs""><td>LearningRate</td><td>0\.001</td><td>0\.003</td></tr>"));
        StringAssert.Matches(html, new Regex(@"<tr><td>BatchSize</td><td>32</td><td>32</td></tr>"));
        StringAssert.Contains(html, "74.00 %");
    }

    [TestMethod]
    public void AnUnknownRunIsAUserErrorThatSaysWhereItLooked()
    {
        var run = ToolRun.Invoke("compare", _first, "no-such-run", "-w", _workspace, "-o", Path.Combine(_workspace, "r.html"));
        Assert.AreEqual(RegNetApp.UserErrorExitCode, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, "no-such-run");
        StringAssert.Contains(run.Output, Path.Combine(_workspace, "runs"));
        Assert.IsFalse(File.Exists(Path.Combine(_workspace, "r.html")));
    }

    [TestMethod]
    public void CurvesPngHasThreePanelsWithTrainAndValidationLines()
    {
        RunCharts.WriteCurves(Microsoft.ML.RegNet.RegNetRun.Load(_second));
        using var bitmap = SKBitmap.Decode(Path.Combine(_second, "curves.png"));
        Assert.AreEqual(3 * 640, bitmap.Width);
        Assert.AreEqual(420, bitmap.Height);
        Assert.IsGreaterThan(300, ChartPixels.Count(bitmap, ChartPixels.Blue), "training lines");
        Assert.IsGreaterThan(100, ChartPixels.Count(bitmap, ChartPixels.Orange), "validation lines");
        Assert.IsGreaterThan(100, ChartPixels.Count(bitmap, ChartPixels.Green), "learning rate");
        Assert.IsEmpty(Directory.GetFiles(_second, "*.tmp"), "no temporary file left");
    }

    [TestMethod]
    public void ARunTrainedByTheToolIsListedFinishedAndItsCurvesPngIsDrawnByScottPlot()
    {
        using var bitmap = SKBitmap.Decode(Path.Combine(TrainedRun.Run, "curves.png"));
        Assert.AreEqual(3 * 640, bitmap.Width, "ScottPlot's three panels, not the library's hand-drawn 2700-pixel strip");
        Assert.IsGreaterThan(300, ChartPixels.Count(bitmap, ChartPixels.Blue));
        var runs = ToolRun.Invoke("runs", "-w", Path.GetDirectoryName(Path.GetDirectoryName(TrainedRun.Run))!);
        Assert.AreEqual(0, runs.ExitCode, runs.Output);
        StringAssert.Matches(runs.Output, new Regex(Regex.Escape(Path.GetFileName(TrainedRun.Run)) + @" .*3/3 .*\d+\.\d\d % .*finished"));
    }
}

/// <summary>Counts pixels near a colour of ScottPlot's Category10 palette (the runs' and series' colours).</summary>
internal static class ChartPixels
{
    public static readonly SKColor Blue = new(0x1f, 0x77, 0xb4), Orange = new(0xff, 0x7f, 0x0e), Green = new(0x2c, 0xa0, 0x2c);

    public static int Count(SKBitmap bitmap, SKColor color, int tolerance = 40)
    {
        int n = 0;
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                var p = bitmap.GetPixel(x, y);
                if (Math.Abs(p.Red - color.Red) + Math.Abs(p.Green - color.Green) + Math.Abs(p.Blue - color.Blue) < tolerance) n++;
            }
        return n;
    }
}
