using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>
/// Training → <c>mlContext.Model.Save</c> → a fresh process that references neither TorchSharp nor Microsoft.ML.RegNet
/// (samples/RegNetML.Scoring) → <c>Model.Load</c> → prediction on image files.
/// </summary>
[TestClass]
public sealed class FreshProcessScoringTests
{
    [TestMethod]
    public void SavedModelPredictsImageFilesInAnotherProcessWithoutTorchSharp()
    {
        Assert.IsTrue(File.Exists(Sample), $"{Sample} was not built");
        string sampleFolder = Path.GetDirectoryName(Sample)!;
        Assert.IsFalse(Directory.EnumerateFiles(sampleFolder, "*", SearchOption.AllDirectories)
            .Any(f => Path.GetFileName(f).Contains("TorchSharp", StringComparison.OrdinalIgnoreCase) || Path.GetFileName(f).StartsWith("libtorch", StringComparison.Ordinal)),
            "the scoring sample must deploy without TorchSharp or libtorch");

        using var data = new TinyImageData(perClass: 8);
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(data.Rows);
        var options = RegNetTransformerPersistenceTests.SaveableOptions();
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath)))
            .Append(ml.MulticlassClassification.Trainers.RegNet(options))
            .Fit(view);
        string path = Path.Combine(data.Folder, "model.zip");
        ml.Model.Save(model, view.Schema, path);

        var rows = data.Rows.Take(4).ToList();
        var engine = ml.Model.CreatePredictionEngine<TinyImageData.Row, Prediction>(ml.Model.Load(path, out _));
        var expected = rows.Select(r => engine.Predict(r)).ToList();

        var (exitCode, stdout, stderr) = RunSample(new[] { path }.Concat(rows.Select(r => r.ImagePath)));
        Assert.AreEqual(0, exitCode, $"scoring process failed:\n{stdout}\n{stderr}");
        StringAssert.Contains(stdout, "2 classes (red, blue)");

        for (int i = 0; i < rows.Count; i++)
        {
            var line = stdout.Split('\n').Single(l => l.StartsWith(rows[i].ImagePath + ":", StringComparison.Ordinal));
            var match = Regex.Match(line, @": (\w+) \(([\d.]+) %\)");
            Assert.IsTrue(match.Success, line);
            int predicted = (int)expected[i].PredictedLabel - 1;
            Assert.AreEqual(new[] { "red", "blue" }[predicted], match.Groups[1].Value, line);
            // The other process prints the probability in percent with one decimal.
            double probability = double.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture) / 100;
            Assert.AreEqual(expected[i].Score[predicted], probability, 0.0006, line);
        }
    }

    [TestMethod]
    public void AFileThatIsNotAModelGivesAClearErrorInTheScoringProcess()
    {
        string folder = Directory.CreateTempSubdirectory("regnet-scoring-").FullName;
        try
        {
            string notAModel = Path.Combine(folder, "model.zip");
            File.WriteAllText(notAModel, "not a zip");
            var (exitCode, _, stderr) = RunSample(new[] { notAModel, notAModel });
            Assert.AreEqual(1, exitCode, stderr);
            StringAssert.Contains(stderr, "is not a loadable ML.NET model");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // samples/RegNetML.Scoring's own output folder (its deps.json resolves ONNX Runtime's native library), set at build time.
    private static string Sample => typeof(FreshProcessScoringTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "ScoringSample").Value!;

    private static (int ExitCode, string Stdout, string Stderr) RunSample(IEnumerable<string> arguments)
    {
        // The SDK tells test processes which dotnet runs them; plain "dotnet" from PATH otherwise.
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "exec", Sample }.Concat(arguments)) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.IsTrue(process.WaitForExit(120_000), "the scoring process did not finish in 2 minutes");
        return (process.ExitCode, stdout, stderr.Result);
    }

    private sealed class Prediction
    {
        public float[] Score { get; set; } = Array.Empty<float>();
        public uint PredictedLabel { get; set; }
    }
}
