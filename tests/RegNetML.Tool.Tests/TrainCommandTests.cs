namespace RegNetML.Tool.Tests;

[TestClass]
public sealed class TrainCommandTests
{
    [TestMethod]
    public void TrainsOnAFolderAndWritesTheRunFolderWithModelZip_PlainLinesWhenRedirected()
    {
        using var images = new ToolImages();
        string data = images.Folder("train", perClass: 8);
        string val = images.Folder("val", perClass: 3, seed: 2);
        var run = ToolRun.Invoke(images.TrainArgs(data, epochs: 2, "--val", val, "--name", "first"));
        Assert.AreEqual(0, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, "training tiny on 16 images of 2 classes, validating on 6");
        StringAssert.Contains(run.Output, "epoch 1/2: loss");
        StringAssert.Contains(run.Output, "epoch 2/2 validation: loss");
        Assert.DoesNotContain("\u001b[", run.Output, "no escape sequences when redirected");
        string folder = run.Line("run");
        Assert.AreEqual(Path.Combine(images.Root, "ws", "runs"), Path.GetDirectoryName(folder));
        Assert.AreEqual(Path.Combine(folder, "model.zip"), run.Line("model"));
        foreach (var file in new[] { "model.zip", "config.json", "metrics.jsonl", "regnet.json", "checkpoints/latest.ckpt" })
            Assert.IsTrue(File.Exists(Path.Combine(folder, file)), file);
        StringAssert.Contains(File.ReadAllText(Path.Combine(folder, "regnet.json")), "\"Name\": \"first\"");
    }

    [TestMethod]
    public void ShowsLiveProgressBarsOnATerminal()
    {
        using var images = new ToolImages();
        string data = images.Folder("train", perClass: 8);
        var run = ToolRun.Invoke(interactive: true, images.TrainArgs(data, epochs: 2, "--val-fraction", "0.25"));
        Assert.AreEqual(0, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, "epoch 2/2");
        StringAssert.Contains(run.Output, "img/s");
        StringAssert.Contains(run.Output, "val top-1");
        StringAssert.Contains(run.Output, "━", "a progress bar is drawn");
        Assert.DoesNotContain("epoch 1/2: loss", run.Output, "no plain lines on a terminal");
        Assert.IsTrue(File.Exists(run.Line("model")));
    }

    [TestMethod]
    public void CtrlCStopsWithACheckpointAndTheResumeCommandThenResumeFinishes()
    {
        using var images = new ToolImages();
        string data = images.Folder("train", perClass: 8);
        var stopped = ToolRun.Invoke(interactive: false, stopWhenOutputContains: "epoch 1/3: loss", images.TrainArgs(data, epochs: 3));
        Assert.AreEqual(130, stopped.ExitCode, stopped.Output);
        string folder = stopped.Line("run");
        StringAssert.Contains(stopped.Output, $"regnet train --resume \"{folder}\"");
        Assert.IsTrue(File.Exists(Path.Combine(folder, "checkpoints", "latest.ckpt")));
        Assert.IsFalse(File.Exists(Path.Combine(folder, "model.zip")), "an interrupted run has no final model");
        Assert.DoesNotContain("epoch 3/3", stopped.Output);

        var resumed = ToolRun.Invoke("train", "--resume", folder);
        Assert.AreEqual(0, resumed.ExitCode, resumed.Output);
        Assert.AreEqual(folder, resumed.Line("run"), "the same run folder continues");
        StringAssert.Contains(resumed.Output, "epoch 3/3: loss");
        Assert.IsTrue(File.Exists(Path.Combine(folder, "model.zip")));
    }

    [TestMethod]
    public void ReadsACsvOfPathAndLabel()
    {
        using var images = new ToolImages();
        string folder = images.Folder("train", perClass: 4);
        string csv = Path.Combine(images.Root, "train.csv");
        File.WriteAllLines(csv, new[] { "path,label" }.Concat(Directory.GetFiles(folder, "*.png", SearchOption.AllDirectories)
            .Select(f => $"{Path.GetRelativePath(images.Root, f)},{Path.GetFileName(Path.GetDirectoryName(f))}")));
        var run = ToolRun.Invoke(images.TrainArgs(csv, epochs: 1));
        Assert.AreEqual(0, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, "on 8 images of 2 classes");
    }

    [TestMethod]
    public void ReadsAnImageNetLayoutWithAValidationLabelFile()
    {
        using var images = new ToolImages();
        string root = Path.Combine(images.Root, "imagenet");
        images.Folder(Path.Combine("imagenet", "train"), perClass: 4, classes: new[] { "n01440764", "n01443537" });
        string val = images.Folder("flatval", perClass: 2, classes: new[] { "n01440764", "n01443537" }, seed: 3);
        Directory.CreateDirectory(Path.Combine(root, "val"));
        var lines = new List<string> { "ImageId,PredictionString" };
        foreach (var file in Directory.GetFiles(val, "*.png", SearchOption.AllDirectories))
        {
            string wnid = Path.GetFileName(Path.GetDirectoryName(file))!, id = $"ILSVRC2012_val_{wnid}_{Path.GetFileNameWithoutExtension(file)}";
            File.Copy(file, Path.Combine(root, "val", id + ".png"));
            lines.Add($"{id},{wnid} 1 2 3 4");
        }
        File.WriteAllLines(Path.Combine(root, "LOC_val_solution.csv"), lines);
        var run = ToolRun.Invoke(images.TrainArgs(root, epochs: 1));
        Assert.AreEqual(0, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, "on 8 images of 2 classes, validating on 4");
    }

    [TestMethod]
    public void CtrlCBeforeTheFirstStepStopsWithoutARunToResume()
    {
        using var images = new ToolImages();
        string data = images.Folder("train", perClass: 4);
        // The header is printed just before Fit starts, so Fit finds the token cancelled.
        var stopped = ToolRun.Invoke(interactive: false, stopWhenOutputContains: "training tiny on", images.TrainArgs(data, epochs: 1));
        Assert.AreEqual(130, stopped.ExitCode, stopped.Output);
        StringAssert.Contains(stopped.Output, "stopped before the first training step");
        Assert.DoesNotContain("internal error", stopped.Output);
    }

    [TestMethod]
    public void RegnetJsonIsWrittenWhenTheRunFolderOpensSoAFailedRunHasIt()
    {
        using var images = new ToolImages();
        string data = images.Folder("train", perClass: 4);
        // A learning rate that makes the loss diverge: the trainer stops with an error after the run folder exists.
        var run = ToolRun.Invoke(images.TrainArgs(data, epochs: 3, "--lr", "1e12", "--weight-decay", "0", "--name", "diverges"));
        Assert.AreNotEqual(0, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, "Lower the learning rate");
        string folder = Directory.GetDirectories(Path.Combine(images.Root, "ws", "runs")).Single();
        StringAssert.Contains(File.ReadAllText(Path.Combine(folder, "regnet.json")), "\"Name\": \"diverges\"");
    }
}
