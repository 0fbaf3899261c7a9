using System.Text.RegularExpressions;

namespace RegNetML.Tool.Tests;

[TestClass]
public sealed class RunsCommandTests
{
    private string _workspace = "";

    [TestInitialize]
    public void WriteRuns()
    {
        _workspace = FakeRuns.Workspace();
        FakeRuns.Write(_workspace, "20261127-100000-RegNetX002", "RegNetX002", 1e-3, new[] { 0.40, 0.55 }, started: new DateTime(2026, 11, 27, 10, 0, 0));
        FakeRuns.Write(_workspace, "20261128-100000-RegNetX002", "RegNetX002", 3e-3, new[] { 0.50, 0.71, 0.68 }, status: "failed", started: new DateTime(2026, 11, 28, 10, 0, 0));
        FakeRuns.Write(_workspace, "20261129-100000-RegNetY004", "RegNetY004", 1e-3, new[] { 0.62 }, status: "running", started: new DateTime(2026, 11, 29, 10, 0, 0));
    }

    [TestCleanup]
    public void Remove() => Directory.Delete(_workspace, recursive: true);

    [TestMethod]
    public void ListsEveryRunWithOnlyTheHyperparametersThatDiffer()
    {
        var run = ToolRun.Invoke("runs", "--workspace", _workspace);
        Assert.AreEqual(0, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, "LearningRate");
        StringAssert.Contains(run.Output, "MaxEpochs", "the runs were configured for different epochs");
        Assert.DoesNotContain("BatchSize", run.Output, "the same in every run: not a column");
        Assert.DoesNotContain("WorkspacePath", run.Output, "not a hyperparameter");
        StringAssert.Matches(run.Output, new Regex(@"2026-11-28 10:00 .*20261128-100000-RegNetX002 .*RegNetX002 .*0\.003 .*3/3 .*71\.00 % .*0:01:15 .*failed"));
        StringAssert.Matches(run.Output, new Regex(@"20261129-100000-RegNetY004 .*running"));
        StringAssert.Contains(run.Output, "3 runs; shown: the hyperparameters that differ between them (2).");
        Assert.IsLessThan(run.Output.IndexOf("20261128-", StringComparison.Ordinal), run.Output.IndexOf("20261127-", StringComparison.Ordinal), "oldest first");
    }

    [TestMethod]
    public void FiltersAndSorts()
    {
        var finished = ToolRun.Invoke("runs", "-w", _workspace, "--status", "finished");
        StringAssert.Contains(finished.Output, "20261127-100000");
        Assert.DoesNotContain("20261128-100000", finished.Output);
        var y = ToolRun.Invoke("runs", "-w", _workspace, "--arch", "y004");
        StringAssert.Contains(y.Output, "20261129-100000");
        Assert.DoesNotContain("20261127-100000", y.Output);
        var since = ToolRun.Invoke("runs", "-w", _workspace, "--since", "2026-11-28");
        Assert.DoesNotContain("20261127-100000", since.Output);
        StringAssert.Contains(since.Output, "20261128-100000");
        var best = ToolRun.Invoke("runs", "-w", _workspace, "--sort", "top1");
        int a = best.Output.IndexOf("20261128-", StringComparison.Ordinal), b = best.Output.IndexOf("20261129-", StringComparison.Ordinal), c = best.Output.IndexOf("20261127-", StringComparison.Ordinal);
        Assert.IsTrue(a < b && b < c, best.Output);
        var byLr = ToolRun.Invoke("runs", "-w", _workspace, "--sort", "LearningRate", "--reverse");
        Assert.IsLessThan(byLr.Output.IndexOf("20261127-", StringComparison.Ordinal), byLr.Output.IndexOf("20261128-", StringComparison.Ordinal), "largest learning rate first");
    }

    [TestMethod]
    public void BadFiltersAndAMissingWorkspaceAreUserErrors()
    {
        foreach (var args in new[] { new[] { "--status", "done" }, new[] { "--since", "yesterday" }, new[] { "--sort", "colour" } })
        {
            var run = ToolRun.Invoke(new[] { "runs", "-w", _workspace }.Concat(args).ToArray());
            Assert.AreEqual(RegNetApp.UserErrorExitCode, run.ExitCode, run.Output);
            StringAssert.Contains(run.Output, args[0]);
        }
        string missing = Path.Combine(_workspace, "nowhere");
        var none = ToolRun.Invoke("runs", "-w", missing);
        Assert.AreEqual(RegNetApp.UserErrorExitCode, none.ExitCode, none.Output);
        StringAssert.Contains(none.Output, missing);
    }
}
