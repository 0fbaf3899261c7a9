using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.ML.RegNet;

namespace RegNetML.Tool.Tests;

/// <summary>
/// The issue's Done-when for the sweep, on a small part of the embedded Fashion-MNIST subset with a tiny network: 8
/// trials of successive halving finish, the chosen configuration is at least as good on validation as the default one
/// at the full budget, and after kill -9 of the sweep process the same command resumes without re-running finished trainings.
/// </summary>
[TestClass]
public sealed class SweepEndToEndTests
{
    [TestMethod]
    [Timeout(600_000, CooperativeCancellation = true)]
    public void EightTrialsOfHalvingSurviveKillNineAndPickAConfigurationAtLeastAsGoodAsTheDefault()
    {
        using var images = new ToolImages();
        var (train, val) = SmallFashionMnist(images.Root);
        string workspace = Path.Combine(images.Root, "ws");
        string[] sweep =
        {
            "sweep", train, "--val", val, "--param", "lr=log:3e-3..3e-1", "--param", "label-smoothing=lin:0..0.2",
            "--trials", "8", "--epochs", "4", "--eta", "2", "--name", "e2e", "-w", workspace,
            "--", "--spec", images.TinySpec(), "--image-size", "32", "--batch-size", "16", "--threads", "1",
        };
        string statePath = Path.Combine(workspace, "sweeps", "e2e", "sweep.json");

        var killed = KillWhenFinished(sweep, statePath, trainings: 3);
        var resumed = ToolRun.Invoke(sweep);
        Assert.AreEqual(0, resumed.ExitCode, resumed.Output);
        StringAssert.Contains(resumed.Output, $"resuming with {killed.Count} trainings already done");

        var state = JsonNode.Parse(File.ReadAllText(statePath))!;
        var results = state["trials"]!.AsArray().SelectMany(t => t!["results"]!.AsArray().Select(r => (Id: (int)t["id"]!, R: r!))).ToList();
        Assert.HasCount(8 + 4 + 2, results, "8 trials at 1 epoch, 4 at 2, 2 at 4");
        Assert.IsTrue(results.All(r => (string?)r.R["status"] == "finished"), state.ToJsonString());
        foreach (var (id, epochs, run) in killed)
            Assert.AreEqual(run, (string?)results.Single(r => r.Id == id && (int)r.R["epochs"]! == epochs).R["run"], $"trial {id} at {epochs} epochs was not trained again");
        var runs = RegNetRun.List(workspace);
        Assert.AreEqual(14, runs.Count(r => r.Status == RegNetRunStatus.Finished));
        Assert.IsTrue(runs.All(r => r.Status is RegNetRunStatus.Finished or RegNetRunStatus.Interrupted), "a run the kill cut short reads as interrupted");

        // The chosen configuration against the default one, both at the full budget.
        string command = resumed.Output.Split('\n').Select(l => l.Trim()).Last(l => l.StartsWith("regnet train ", StringComparison.Ordinal));
        double chosen = RegNetRun.Load(resumed.Line("best").Split("run: ")[1]).BestTop1!.Value;
        var baseline = ToolRun.Invoke(new[] { "train", train, "--val", val, "--spec", images.TinySpec(), "--image-size", "32", "--batch-size", "16",
            "--threads", "1", "--workspace", workspace, "--seed", "1", "--epochs", "4" });
        Assert.AreEqual(0, baseline.ExitCode, baseline.Output);
        double byDefault = RegNetRun.Load(baseline.Line("run")).BestTop1!.Value;
        // Printed for the record (dotnet test --logger "console;verbosity=detailed" shows it).
        Console.WriteLine($"killed after {killed.Count} trainings; {runs.Count} run folders; chosen {chosen:P2} ({command}); default {byDefault:P2}");
        Assert.IsGreaterThanOrEqualTo(byDefault, chosen, $"chosen {chosen:P2} ({command}) vs default {byDefault:P2}");
        StringAssert.Contains(command, "--epochs 4 --label-smoothing ");
    }

    // The sweep in a process of its own, killed with SIGKILL once sweep.json records this many finished trainings.
    private static List<(int Id, int Epochs, string Run)> KillWhenFinished(string[] args, string statePath, int trainings)
    {
        var info = new ProcessStartInfo(DotnetHost()) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "regnet.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        var deadline = DateTime.UtcNow.AddMinutes(5);
        List<(int, int, string)> finished = new();
        while (finished.Count < trainings)
        {
            Assert.IsFalse(process.HasExited, $"the sweep ended before it could be killed:\n{(process.HasExited ? output.Result : "")}");
            Assert.IsLessThan(deadline, DateTime.UtcNow, "the sweep did not finish three trainings in 5 minutes");
            Thread.Sleep(200);
            finished = Finished(statePath);
        }
        process.Kill(); // SIGKILL on Unix: no handler runs, as in a crash.
        process.WaitForExit();
        return Finished(statePath);
    }

    private static List<(int Id, int Epochs, string Run)> Finished(string statePath)
    {
        if (!File.Exists(statePath)) return new();
        var state = JsonNode.Parse(File.ReadAllText(statePath))!;
        return state["trials"]!.AsArray()
            .SelectMany(t => t!["results"]!.AsArray().Where(r => (string?)r!["status"] == "finished")
                .Select(r => ((int)t["id"]!, (int)r!["epochs"]!, (string)r["run"]!)))
            .ToList();
    }

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host
        : Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p
        : "dotnet";

    // 24 training and 10 validation images of each of the 10 classes: enough to tell learning rates apart, quick to train.
    private static (string Train, string Val) SmallFashionMnist(string root)
    {
        string all = Path.Combine(root, "fashion");
        Assert.AreEqual(0, ToolRun.Invoke("data", "sample", all).ExitCode);
        return (Subset(Path.Combine(all, "train"), Path.Combine(root, "train"), 24), Subset(Path.Combine(all, "test"), Path.Combine(root, "val"), 10));
    }

    private static string Subset(string from, string to, int perClass)
    {
        foreach (var classFolder in Directory.GetDirectories(from))
        {
            string target = Path.Combine(to, Path.GetFileName(classFolder));
            Directory.CreateDirectory(target);
            foreach (var file in Directory.GetFiles(classFolder).Order(StringComparer.Ordinal).Take(perClass))
                File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }
        return to;
    }
}
