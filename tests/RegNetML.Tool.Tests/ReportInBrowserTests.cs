using System.Diagnostics;
using SkiaSharp;

namespace RegNetML.Tool.Tests;

/// <summary>The comparison report in a real browser: Debian's headless Chromium loads it (no console message), draws
/// the charts and fills the tables. Skipped only when chromium is not installed (.ci/run installs it).</summary>
[TestClass]
public sealed class ReportInBrowserTests
{
    [TestMethod]
    public void ChromiumShowsTheChartsAndTheTablesWithoutConsoleMessages()
    {
        string chromium = FindChromium() ?? throw new AssertInconclusiveException("chromium is not installed (apt-get install chromium); .ci/run installs it.");
        string workspace = FakeRuns.Workspace();
        try
        {
            FakeRuns.Write(workspace, "20261127-100000-RegNetX002", "RegNetX002", 1e-3, new[] { 0.40, 0.55, 0.60 });
            FakeRuns.Write(workspace, "20261128-100000-RegNetX002", "RegNetX002", 3e-3, new[] { 0.50, 0.71, 0.74 });
            string report = Path.Combine(workspace, "report.html");
            var compare = ToolRun.Invoke("compare", "20261127-100000-RegNetX002", "20261128-100000-RegNetX002", "-w", workspace, "-o", report);
            Assert.AreEqual(0, compare.ExitCode, compare.Output);

            string screenshot = Path.Combine(workspace, "report.png");
            var (_, log) = Run(chromium, workspace, "--hide-scrollbars", "--window-size=1280,2600", $"--screenshot={screenshot}", new Uri(report).AbsoluteUri);
            var (dom, domLog) = Run(chromium, workspace, "--dump-dom", new Uri(report).AbsoluteUri);
            foreach (var line in (log + domLog).Split('\n'))
                Assert.DoesNotContain(":CONSOLE", line, "the page logs nothing to the console");

            StringAssert.Contains(dom, "<tr class=\"differs\"><td>LearningRate</td><td>0.001</td><td>0.003</td></tr>");
            StringAssert.Contains(dom, "<td>74.00 %</td>");
            using var bitmap = SKBitmap.Decode(screenshot) ?? throw new AssertFailedException($"Chromium wrote no screenshot; its log:\n{log}");
            Assert.IsGreaterThan(3000, ChartPixels.Count(bitmap, ChartPixels.Blue), "the first run's curves are drawn");
            Assert.IsGreaterThan(3000, ChartPixels.Count(bitmap, ChartPixels.Orange), "the second run's curves are drawn");
            Assert.IsGreaterThan(2000, ChartPixels.Count(bitmap, new SKColor(0xff, 0xf4, 0xd6), tolerance: 6), "the differing hyperparameter's row is shown highlighted");
        }
        finally { Directory.Delete(workspace, recursive: true); }
    }

    private static string? FindChromium() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "chromium")).FirstOrDefault(File.Exists);

    private static (string Stdout, string Stderr) Run(string chromium, string workspace, params string[] args)
    {
        var info = new ProcessStartInfo(chromium) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
                     $"--user-data-dir={Path.Combine(workspace, "chromium-profile")}" }.Concat(args))
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"chromium {string.Join(' ', args)} did not finish in 90 s");
        }
        Assert.AreEqual(0, process.ExitCode, stderr.Result);
        return (stdout.Result, stderr.Result);
    }
}
