using Microsoft.ML.RegNet;

namespace RegNetML.Tool.Tests;

[TestClass]
public sealed class ExportAndWeightsTests
{
    private static string Accuracies(string model)
    {
        var run = ToolRun.Invoke("evaluate", model, TrainedRun.Val);
        Assert.AreEqual(0, run.ExitCode, run.Output);
        return run.Output.Split('\n').Single(l => l.StartsWith("6 images:")).Split(", log-loss")[0];
    }

    [TestMethod]
    public void ExportsARunToEveryFormatAndTheExportsScoreLikeTheRun()
    {
        string dir = Path.Combine(TrainedRun.Images.Root, "export");
        Directory.CreateDirectory(dir);
        string onnx = Path.Combine(dir, "m.onnx"), zip = Path.Combine(dir, "m.zip"), plain = Path.Combine(dir, "m.safetensors"), own = Path.Combine(dir, "m.regnet.safetensors");
        var run = ToolRun.Invoke("export", TrainedRun.Run, "--onnx", onnx, "--zip", zip, "--safetensors", plain, "--regnet", own);
        Assert.AreEqual(0, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, Path.Combine(TrainedRun.Run, "checkpoints", "latest.ckpt"));
        foreach (var file in new[] { onnx, zip, plain, own }) StringAssert.Contains(run.Output, $"wrote {file}");

        using (var imported = RegNetOnnxImporter.Load(onnx))
        {
            Assert.AreEqual(2, imported.NumberOfClasses);
            Assert.AreEqual("tiny", imported.Spec.Name);
        }
        string expected = Accuracies(TrainedRun.Run);
        Assert.AreEqual(expected, Accuracies(zip), "the exported model.zip");
        Assert.AreEqual(expected, Accuracies(own), "the own format keeps classes and preprocessing");
        var metadata = RegNetWeights.ReadMetadata(plain);
        Assert.AreEqual("pt", metadata["format"], "plain timm-layout safetensors");
    }

    [TestMethod]
    public void InspectShowsTheLoadReportAndConvertWritesTheOwnFormat()
    {
        string checkpoint = Path.Combine(TrainedRun.Run, "checkpoints", "latest.ckpt");
        var inspect = ToolRun.Invoke("weights", "inspect", checkpoint);
        Assert.AreEqual(0, inspect.ExitCode, inspect.Output);
        StringAssert.Contains(inspect.Output, "RegNetCheckpoint");
        StringAssert.Contains(inspect.Output, "2: blue, red");
        StringAssert.Contains(inspect.Output, "Loaded");

        string own = Path.Combine(TrainedRun.Images.Root, "converted.regnet.safetensors");
        var convert = ToolRun.Invoke("weights", "convert", checkpoint, own);
        Assert.AreEqual(0, convert.ExitCode, convert.Output);
        var back = ToolRun.Invoke("weights", "inspect", own);
        Assert.AreEqual(0, back.ExitCode, back.Output);
        StringAssert.Contains(back.Output, "RegNetML");
        StringAssert.Contains(back.Output, "2: blue, red");
    }

    [TestMethod]
    public void ConvertRefusesAnOutputFormatItCannotWrite()
    {
        var run = ToolRun.Invoke("weights", "convert", Path.Combine(TrainedRun.Run, "checkpoints", "latest.ckpt"), Path.Combine(TrainedRun.Images.Root, "out.h5"));
        Assert.AreEqual(2, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, ".regnet.safetensors, .safetensors, .onnx, .zip");
    }
}
