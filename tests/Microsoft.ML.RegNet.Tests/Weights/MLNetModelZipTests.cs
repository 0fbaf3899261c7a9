using System.IO.Compression;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Tests.Training;
using Microsoft.ML.RegNet.Training;
using Microsoft.ML.RegNet.Weights;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Weights;

/// <summary>A model.zip saved by <c>mlContext.Model.Save</c> is a starting point for more training.</summary>
[TestClass]
public sealed class MLNetModelZipTests
{
    private static readonly RegNetSpec X002 = RegNetSpec.FromName("X002");

    private static RegNetTrainer.Options Options(string? startingWeights = null) => new()
    {
        Spec = X002, ImageSize = 32, BatchSize = 8, MaxEpochs = 1, LearningRate = 3e-3, Seed = 5, CropFraction = 1.0,
        StartingWeightsPath = startingWeights, WorkerThreads = 1,
    };

    /// <summary>Trains X002 for one epoch on <paramref name="data"/> and saves the pipeline; returns the zip and the trained transformer.</summary>
    private static (string Zip, RegNetTransformer Trained) TrainAndSave(TinyImageData data)
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(data.Rows);
        var model = ml.Transforms.Conversion.MapValueToKey("Label", nameof(TinyImageData.Row.Label))
            .Append(ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath)))
            .Append(ml.MulticlassClassification.Trainers.RegNet(Options()))
            .Fit(view);
        string zip = Path.Combine(data.Folder, "model.zip");
        ml.Model.Save(model, view.Schema, zip);
        return (zip, ((IEnumerable<ITransformer>)model).OfType<RegNetTransformer>().Single());
    }

    [TestMethod]
    public void SavedModelZipFineTunesOnNewClassesAndScores()
    {
        using var data = new TinyImageData(perClass: 4, size: 32);
        var (zip, trained) = TrainAndSave(data);
        using var _ = trained;
        using (var archive = ZipFile.OpenRead(zip))
            Console.WriteLine("model.zip entries: " + string.Join(", ", archive.Entries.Select(e => $"{e.FullName} ({e.Length} B)")));
        Assert.AreEqual(WeightFormat.MLNetModel, WeightFormatDetector.Detect(zip));

        // Same classes: the whole network, head included, comes back and computes what the trained model computes.
        using var same = new RegNetModel(X002, 2);
        var report = RegNetWeights.Load(same, zip);
        Assert.IsTrue(report.Tensors.IsComplete, report.ToString());
        Assert.AreEqual(ClassifierStatus.Loaded, report.Classifier);
        CollectionAssert.AreEqual(trained.ClassNames.ToArray(), report.ClassNames.ToArray(), report.ToString());
        Assert.IsTrue(report.Notes.Any(n => n.Contains("folded")), report.ToString());
        using (no_grad())
        {
            same.eval();
            trained.Model.eval();
            using var input = randn(2, 3, 32, 32, generator: new Generator(7));
            using var expected = trained.Model.call(input);
            using var actual = same.call(input);
            Assert.IsTrue(actual.allclose(expected, rtol: 1e-3, atol: 1e-4), "the recovered network scores as the trained one");
        }

        // Three classes: the classifier is re-initialised, the frozen backbone keeps the zip's weights, and the result scores.
        using var more = new TinyImageData(perClass: 3, size: 32, seed: 2, classes: ["red", "blue", "green"]);
        var ml = new MLContext(seed: 3);
        var view = ml.Data.LoadFromEnumerable(more.Rows);
        var options = Options(zip);
        options.FreezeStem = true;
        options.FreezeStages = X002.StageDepths.Count;
        var tuned = ml.Transforms.Conversion.MapValueToKey("Label", nameof(TinyImageData.Row.Label))
            .Append(ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath)))
            .Append(ml.MulticlassClassification.Trainers.RegNet(options))
            .Fit(view);
        using var fineTuned = ((IEnumerable<ITransformer>)tuned).OfType<RegNetTransformer>().Single();
        Assert.AreEqual(3, fineTuned.Model.NumberOfClasses);
        var start = same.state_dict();
        foreach (var (name, tensor) in fineTuned.Model.state_dict().Where(kv => kv.Key.EndsWith(".weight") && !kv.Key.StartsWith("head.")))
            Assert.IsTrue(tensor.eq(start[name]).all().item<bool>(), $"{name}: the frozen backbone does not hold the zip's weights");

        var scores = ml.Data.CreateEnumerable<Scored>(tuned.Transform(view), reuseRowObject: false).ToList();
        Assert.HasCount(more.Rows.Count, scores);
        Assert.IsTrue(scores.All(s => s.Score.Length == 3 && Math.Abs(s.Score.Sum() - 1) < 1e-3), "three probabilities per image");
    }

    [TestMethod]
    public void ZipWithoutARegNetIsRefusedWithItsName()
    {
        string dir = WeightFixtures.TempDir();
        string path = Path.Combine(dir, "other.zip");
        var ml = new MLContext();
        var view = ml.Data.LoadFromEnumerable(new[] { new Scored { Score = [1, 2, 3] } });
        ml.Model.Save(ml.Transforms.CopyColumns("Copy", nameof(Scored.Score)).Fit(view), view.Schema, path);
        using var model = new RegNetModel(X002, 2);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => RegNetWeights.Load(model, path));
        StringAssert.Contains(e.Message, path);
        StringAssert.Contains(e.Message, "ML.NET model with a RegNet");
        Directory.Delete(dir, true);
    }

    private sealed class Scored
    {
        [VectorType(3)]
        public float[] Score { get; set; } = [];
    }
}
