using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>Run folders read back through the public <see cref="RegNetRun"/>: configuration, metrics, best top-1, wall time and status.</summary>
[TestClass]
public sealed class RegNetRunTests
{
    private static RegNetTrainer.Options TinyOptions(string workspace, int epochs) => new()
    {
        Spec = TinyImageData.TinySpec, ImageSize = 32, BatchSize = 8, MaxEpochs = epochs, LearningRate = 3e-3, WorkerThreads = 2, Seed = 5,
        Augmentation = AugmentationOptions.Training(0.5) with { LightingStd = 0 }, LogEveryNSteps = 1, ValidationFraction = 0.25,
        WorkspacePath = workspace,
    };

    [TestMethod]
    public void AFinishedRunReadsBackWithItsHistoryBestTop1WallTimeAndHyperparameters()
    {
        using var data = new TinyImageData(perClass: 8);
        string workspace = Directory.CreateTempSubdirectory("regnet-runs-").FullName;
        try
        {
            data.Fit(TinyOptions(workspace, epochs: 2)).Dispose();
            var run = RegNetRun.List(workspace).Single();
            Assert.AreEqual(RegNetRunStatus.Finished, run.Status, run.StatusDetail);
            Assert.AreEqual("completed", run.StatusDetail);
            Assert.AreEqual("tiny", run.Architecture);
            Assert.AreEqual(2, run.Epochs);
            Assert.AreEqual(2, run.MaxEpochs);
            var validation = run.Metrics.Where(m => m.Phase == MetricsPhase.Validation).ToList();
            Assert.HasCount(2, validation);
            Assert.AreEqual(validation.Max(m => m.Accuracy), run.BestTop1);
            Assert.IsTrue(run.WallTime > TimeSpan.Zero, $"{run.WallTime}");
            Assert.IsNotNull(run.Started);
            Assert.AreEqual("0.003", run.Hyperparameters["LearningRate"]);
            Assert.AreEqual("0.5", run.Hyperparameters["augmentation.AreaFactor"]);
            Assert.IsFalse(run.Hyperparameters.ContainsKey("WorkspacePath"), "where the files go is no hyperparameter");
            Assert.AreEqual(run.Path, RegNetRun.Load(run.Path).Path);
        }
        finally { Directory.Delete(workspace, true); }
    }

    [TestMethod]
    public void ARunWhoseMetricsCallbackThrowsIsFailedAndACancelledOneInterrupted()
    {
        using var data = new TinyImageData(perClass: 8);
        string workspace = Directory.CreateTempSubdirectory("regnet-runs-").FullName;
        try
        {
            var failing = TinyOptions(workspace, epochs: 2);
            failing.MetricsCallback = _ => throw new InvalidOperationException("callback broke");
            Assert.ThrowsExactly<InvalidOperationException>(() => data.Fit(failing).Dispose());
            using var cancel = new CancellationTokenSource();
            var cancelled = TinyOptions(workspace, epochs: 3);
            cancelled.CancellationToken = cancel.Token;
            cancelled.MetricsCallback = m => { if (m.Step >= 2) cancel.Cancel(); };
            data.Fit(cancelled).Dispose();

            var runs = RegNetRun.List(workspace);
            Assert.HasCount(2, runs);
            Assert.AreEqual(RegNetRunStatus.Failed, runs[0].Status);
            Assert.AreEqual("callback broke", runs[0].StatusDetail);
            Assert.AreEqual(RegNetRunStatus.Interrupted, runs[1].Status);
            Assert.AreEqual("cancelled", runs[1].StatusDetail);
        }
        finally { Directory.Delete(workspace, true); }
    }

    [TestMethod]
    public void ARunMarkedRunningReadsAsInterruptedOnceItsProcessIsGone()
    {
        string folder = Directory.CreateTempSubdirectory("regnet-run-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "config.json"), """{"architecture":"RegNetX002","MaxEpochs":3}""");
            // This process: running.
            new RunStatusFile(folder).Heartbeat();
            Assert.AreEqual(RegNetRunStatus.Running, RegNetRun.Load(folder).Status);
            // A process that has ended (its pid recorded as if it had trained the run).
            using var ended = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
            ended.WaitForExit();
            string statusPath = Path.Combine(folder, RunStatusFile.FileName);
            var json = JsonNode.Parse(File.ReadAllText(statusPath))!.AsObject();
            json["pid"] = ended.Id;
            File.WriteAllText(statusPath, json.ToJsonString());
            var run = RegNetRun.Load(folder);
            Assert.AreEqual(RegNetRunStatus.Interrupted, run.Status);
            StringAssert.Contains(run.StatusDetail, "killed or crashed");
        }
        finally { Directory.Delete(folder, true); }
    }

    [TestMethod]
    public void NotARunFolderAndAMissingWorkspaceAreNamedInTheError()
    {
        string folder = Directory.CreateTempSubdirectory("regnet-notrun-").FullName;
        try
        {
            var e = Assert.ThrowsExactly<InvalidDataException>(() => RegNetRun.Load(folder));
            StringAssert.Contains(e.Message, "no config.json");
            StringAssert.Contains(e.Message, folder);
            var missing = Path.Combine(folder, "nope");
            StringAssert.Contains(Assert.ThrowsExactly<DirectoryNotFoundException>(() => RegNetRun.List(missing)).Message, missing);
            Assert.IsEmpty(RegNetRun.List(folder), "a workspace without runs/ has no runs");
        }
        finally { Directory.Delete(folder, true); }
    }
}
