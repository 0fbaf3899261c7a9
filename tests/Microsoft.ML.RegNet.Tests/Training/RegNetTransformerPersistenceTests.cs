using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Training;

[TestClass]
public sealed class RegNetTransformerPersistenceTests
{
    [TestMethod]
    public void ModelSaveAndLoadGivePredictionsOfTheTrainedPipeline()
    {
        using var data = new TinyImageData(perClass: 8);
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(data.Rows);
        var options = SaveableOptions();
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", nameof(TinyImageData.Row.Label))
            .Append(ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath)))
            .Append(ml.MulticlassClassification.Trainers.RegNet(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabelText", "PredictedLabel"));
        var model = pipeline.Fit(view);
        string path = Path.Combine(data.Folder, "model.zip");
        ml.Model.Save(model, view.Schema, path);

        var loaded = new MLContext(seed: 2).Model.Load(path, out var schema);
        Assert.IsFalse(((IEnumerable<ITransformer>)loaded).OfType<RegNetTransformer>().Any(), "Load gives ML.NET's own transformers");
        var before = ml.Data.CreateEnumerable<Scored>(model.Transform(view), false).ToList();
        var after = ml.Data.CreateEnumerable<Scored>(loaded.Transform(view), false).ToList();
        for (int i = 0; i < before.Count; i++)
        {
            Assert.AreEqual(before[i].PredictedLabelText, after[i].PredictedLabelText, $"row {i}");
            for (int c = 0; c < 2; c++) Assert.AreEqual(before[i].Score[c], after[i].Score[c], 1e-4, $"row {i} class {c}");
        }
        var engine = ml.Model.CreatePredictionEngine<TinyImageData.Row, Scored>(loaded);
        Assert.AreEqual(before[0].PredictedLabelText, engine.Predict(data.Rows[0]).PredictedLabelText);
    }

    /// <summary>A tiny model trained on 32×32 images with the whole image as evaluation crop.</summary>
    internal static RegNetTrainer.Options SaveableOptions() => new()
    {
        Spec = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8), ImageSize = 32, BatchSize = 8, MaxEpochs = 2,
        LearningRate = 3e-3, Seed = 5, CropFraction = 1.0,
    };

    private sealed class Scored
    {
        public float[] Score { get; set; } = Array.Empty<float>();
        public string PredictedLabelText { get; set; } = "";
    }
}
