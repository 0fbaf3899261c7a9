using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet;

/// <summary>Bulk scoring throughput: X002 trained one epoch on 512 images, then Transform over test images, three rounds.</summary>
internal static class TransformThroughput
{
    public static int Run(string folder, List<Row> train, List<Row> test, int images)
    {
        var ml = new MLContext(seed: 1);
        var options = new RegNetTrainer.Options
        {
            Architecture = "X002", ImageSize = 64, BatchSize = 64, MaxEpochs = 1, Seed = 1, NumberOfThreads = 2,
            Normalization = ImageNormalization.Uniform(0.286f, 0.353f),
        };
        var subset = train.Where((_, i) => i % 97 == 0).Take(512).ToList();
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.LoadImages("Image", folder, "Path"))
            .Append(ml.MulticlassClassification.Trainers.RegNet(options)).Fit(ml.Data.LoadFromEnumerable(subset));
        var view = ml.Data.LoadFromEnumerable(test.Take(images).ToList());
        for (int round = 0; round < 3; round++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            int n = model.Transform(view).GetColumn<float[]>("Score").Count();
            Console.WriteLine($"round {round}: {n} images in {clock.Elapsed.TotalSeconds:F2} s = {n / clock.Elapsed.TotalSeconds:F0} images/s");
        }
        return 0;
    }
}
