using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet;

/// <summary>The saved model is the trained model, at scale: 1,000 test images through both, labels and probabilities compared.</summary>
internal static class SavedModelParity
{
    public static int Run(string folder, List<Row> train, List<Row> test, int epochs, int imageSize, double cropFraction, int trainImages)
    {
        var ml = new MLContext(seed: 1);
        var options = new RegNetTrainer.Options
        {
            Architecture = "X002", ImageSize = imageSize, CropFraction = cropFraction, BatchSize = 128, MaxEpochs = epochs,
            LearningRate = 1e-3, WarmupEpochs = 0, Augmentation = AugmentationOptions.Training(areaFactor: 1.0) with { LightingStd = 0 },
            Normalization = ImageNormalization.Uniform(0.286f, 0.353f), NumberOfThreads = 2, WorkerThreads = 1, LogEveryNSteps = 100,
            MetricsCallback = m => Console.WriteLine(m),
        };
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.LoadImages("Image", folder, "Path"))
            .Append(ml.MulticlassClassification.Trainers.RegNet(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        // A spread subset (10,000 by default): the check is about scoring, not accuracy.
        int stride = Math.Max(1, train.Count / trainImages);
        var trainRows = train.Where((_, i) => i % stride == 0).Take(trainImages).ToList();
        var model = pipeline.Fit(ml.Data.LoadFromEnumerable(trainRows));
        string path = Path.Combine(folder, $"parity-{imageSize}.zip");
        ml.Model.Save(model, ml.Data.LoadFromEnumerable(trainRows).Schema, path);
        var loaded = new MLContext().Model.Load(path, out _);

        var rows = test.Take(1000).ToList();
        var view = ml.Data.LoadFromEnumerable(rows);
        var before = ml.Data.CreateEnumerable<Scored>(model.Transform(view), false).ToList();
        var after = ml.Data.CreateEnumerable<Scored>(loaded.Transform(view), false).ToList();
        var (same, worst) = Compare(before, after);
        Console.WriteLine($"Transform, trained vs reloaded ({imageSize} px, crop {cropFraction}): {same}/{rows.Count} labels identical, " +
                          $"largest probability difference {worst:E1}");

        var shared = new PredictionEngineOptions { OwnsTransformer = false };
        using var fitted = ml.Model.CreatePredictionEngine<Row, Scored>(model, shared);
        using var reloaded = ml.Model.CreatePredictionEngine<Row, Scored>(loaded, shared);
        var fromFitted = rows.Select(r => Copy(fitted.Predict(r))).ToList();
        var fromLoaded = rows.Select(r => Copy(reloaded.Predict(r))).ToList();
        var (sameEngine, worstEngine) = Compare(fromFitted, fromLoaded);
        Console.WriteLine($"PredictionEngine, fitted vs reloaded: {sameEngine}/{rows.Count} labels identical, largest probability difference {worstEngine:E1}");
        Console.WriteLine($"Test top-1 of this short run: {before.Zip(rows).Count(z => z.First.PredictedClass == z.Second.Label) / (double)rows.Count:P1}");
        return same == rows.Count && sameEngine == rows.Count && worst <= 1e-4 && worstEngine <= 1e-4 ? 0 : 1;
    }

    private static Scored Copy(Scored s) => new() { Score = s.Score.ToArray(), PredictedClass = s.PredictedClass };

    private static (int Same, double Worst) Compare(List<Scored> a, List<Scored> b)
    {
        int same = a.Zip(b).Count(z => z.First.PredictedClass == z.Second.PredictedClass);
        double worst = a.Zip(b).Max(z => z.First.Score.Zip(z.Second.Score).Max(p => Math.Abs(p.First - p.Second)));
        return (same, worst);
    }

    private sealed class Scored
    {
        public float[] Score { get; set; } = [];
        public string PredictedClass { get; set; } = "";
    }
}
