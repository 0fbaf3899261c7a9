using System.Text.Json;

namespace RegNetML.Tool.Tests;

[TestClass]
public sealed class ScoringCommandTests
{
    [TestMethod]
    public void EvaluatesARunFolderWithMetricsPerClassTableAndConfusionMatrix()
    {
        var run = ToolRun.Invoke("evaluate", TrainedRun.Run, TrainedRun.Val);
        Assert.AreEqual(0, run.ExitCode, run.Output);
        Assert.AreEqual(Path.Combine(TrainedRun.Run, "model.zip"), run.Line("model"));
        StringAssert.Matches(run.Output, new System.Text.RegularExpressions.Regex(@"6 images: top-1 \d+\.\d\d %?, top-2 100\.00 ?%, log-loss \d\.\d{4}"));
        StringAssert.Contains(run.Output, "confusion matrix (rows: true class, columns: predicted):");
        StringAssert.Contains(run.Output, "top-1 (recall)");
        // The confusion table's rows (the last two "│ blue"/"│ red" rows) each sum to the class's 3 images.
        var rows = run.Output.Split('\n').Where(l => l.StartsWith("│ blue") || l.StartsWith("│ red")).TakeLast(2).ToList();
        Assert.HasCount(2, rows, run.Output);
        foreach (var row in rows)
            Assert.AreEqual(3, row.Split('│', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Skip(1).Sum(int.Parse), row);
    }

    [TestMethod]
    public void TheCheckpointAndTheModelZipGiveTheSameTop1()
    {
        // The saved model is scored by ONNX Runtime, the checkpoint through a fresh export: same top-1 and top-2.
        string Accuracies(string model)
        {
            var run = ToolRun.Invoke("evaluate", model, TrainedRun.Val);
            Assert.AreEqual(0, run.ExitCode, run.Output);
            return run.Output.Split('\n').Single(l => l.StartsWith("6 images:")).Split(", log-loss")[0];
        }
        Assert.AreEqual(Accuracies(Path.Combine(TrainedRun.Run, "model.zip")), Accuracies(Path.Combine(TrainedRun.Run, "checkpoints", "latest.ckpt")));
    }

    [TestMethod]
    public void PredictsFoldersAsATableAndAsJsonLines()
    {
        var table = ToolRun.Invoke("predict", TrainedRun.Run, Path.Combine(TrainedRun.Val, "blue"), Path.Combine(TrainedRun.Val, "red", "000.png"), "-k", "1");
        Assert.AreEqual(0, table.ExitCode, table.Output);
        StringAssert.Contains(table.Output, "top-1 classes");
        StringAssert.Contains(table.Output, Path.Combine(TrainedRun.Val, "red", "000.png"));

        var json = ToolRun.Invoke("predict", TrainedRun.Run, TrainedRun.Val, "--json");
        Assert.AreEqual(0, json.ExitCode, json.Output);
        var lines = json.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.HasCount(6, lines);
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            var top = doc.RootElement.GetProperty("top");
            Assert.AreEqual(2, top.GetArrayLength(), "k is capped at the class count");
            double sum = top.EnumerateArray().Sum(t => t.GetProperty("probability").GetDouble());
            Assert.AreEqual(1.0, sum, 1e-4, "two classes: the top-2 probabilities sum to one");
            StringAssert.StartsWith(doc.RootElement.GetProperty("path").GetString(), TrainedRun.Val);
        }
    }
}
