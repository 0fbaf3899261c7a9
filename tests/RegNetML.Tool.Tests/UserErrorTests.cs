namespace RegNetML.Tool.Tests;

/// <summary>Mistakes a user can make: one line that says what is wrong and what to do, exit code 2, no stack trace.</summary>
[TestClass]
public sealed class UserErrorTests
{
    private static ToolRun AssertUserError(string expected, params string[] args)
    {
        var run = ToolRun.Invoke(args);
        Assert.AreEqual(RegNetApp.UserErrorExitCode, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, expected);
        Assert.DoesNotContain("   at ", run.Output, "no stack trace without --verbose");
        // The error is the last line and a single one (train may have printed what it was about to do).
        var lines = run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.HasCount(1, lines.Where(l => l.StartsWith("error: ")), run.Output);
        StringAssert.StartsWith(lines[^1], "error: ");
        Assert.IsLessThanOrEqualTo(1, lines.Length - 1, $"at most the training header before the error:\n{run.Output}");
        return run;
    }

    [TestMethod]
    public void MissingFolder()
    {
        using var images = new ToolImages();
        AssertUserError("does not exist. Pass an image folder", images.TrainArgs(Path.Combine(images.Root, "nowhere"), epochs: 1));
    }

    [TestMethod]
    public void OneClassOnly()
    {
        using var images = new ToolImages();
        AssertUserError("has one class only ('cat'); a classifier needs at least two", images.TrainArgs(images.Folder("d", 3, new[] { "cat" }), epochs: 1));
    }

    [TestMethod]
    public void UnknownArchitecture()
    {
        using var images = new ToolImages();
        AssertUserError("Unknown architecture 'X999'. Use one of X002", "train", images.Folder("d", 2), "--arch", "X999");
    }

    [TestMethod]
    public void IncompatibleWeights()
    {
        // The tiny run's weights are not a RegNetX-002's.
        using var images = new ToolImages();
        string tiny = Path.Combine(images.Root, "tiny.regnet.safetensors");
        Assert.AreEqual(0, ToolRun.Invoke("export", TrainedRun.Run, "--regnet", tiny).ExitCode);
        var run = AssertUserError("does not fit RegNetX002", "train", images.Folder("d", 2), "--arch", "X002", "--image-size", "32", "--epochs", "1",
            "--workspace", Path.Combine(images.Root, "ws"), "--weights", tiny);
        StringAssert.Contains(run.Output, "Use the architecture the weights were trained with");
    }

    [TestMethod]
    public void AFileThatIsNotAModel()
    {
        using var images = new ToolImages();
        string text = Path.Combine(images.Root, "notes.pth");
        File.WriteAllText(text, "not a model");
        AssertUserError("is not a model or weight file regnet reads", "evaluate", text, images.Folder("d", 2));
        string zip = Path.Combine(images.Root, "model.zip");
        File.WriteAllText(zip, "not a zip");
        AssertUserError("is not a model.zip that ML.NET can load", "predict", zip, images.Folder("e", 1));
    }

    [TestMethod]
    public void MissingWeightFileAndAPlainStateDictWithoutArchitecture()
    {
        using var images = new ToolImages();
        AssertUserError("--weights missing.h5: no such file", "train", images.Folder("d", 2), "--weights", "missing.h5");
        string plain = Path.Combine(images.Root, "plain.safetensors");
        Assert.AreEqual(0, ToolRun.Invoke("export", TrainedRun.Run, "--safetensors", plain).ExitCode);
        AssertUserError("Give --arch NAME", "weights", "inspect", plain);
        AssertUserError("does not fit the architecture", "weights", "inspect", plain, "--arch", "X002");
    }

    [TestMethod]
    public void ResumeOfAFolderThatIsNotARun()
    {
        using var images = new ToolImages();
        AssertUserError("has no regnet.json", "train", "--resume", images.Folder("d", 1));
    }
}
