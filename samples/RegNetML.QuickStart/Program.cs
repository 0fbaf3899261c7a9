// Quick start: train a RegNet on real images through the ordinary ML.NET path, evaluate it, save it and load it back.
// Data: a class-balanced subset of Fashion-MNIST (MIT licence) embedded in data/, written out as PNG files in an
// image-folder layout first, so the pipeline is exactly what a user runs on their own folder of images.
using Microsoft.ML;
using Microsoft.ML.RegNet;

int epochs = args.Length > 0 ? int.Parse(args[0]) : 4;
string workspace = args.Length > 1 ? args[1] : Path.Combine(Path.GetTempPath(), "regnetml-quickstart");

Console.WriteLine("The 24 RegNet ImageNet models (1000 classes, 224×224):");
Console.WriteLine($"{"model",-11} {"depths",-14} {"widths",-22} {"params",12} {"GFLOPs",7}");
foreach (var spec in RegNetSpec.All)
    Console.WriteLine($"{spec.Name,-11} {string.Join(' ', spec.StageDepths),-14} {string.Join(' ', spec.StageWidths),-22} {spec.ParameterCount(),12:N0} {spec.Flops() / 1e9,7:F2}");

string imageFolder = Path.Combine(workspace, "images");
var (train, test) = FashionMnistFiles.WriteImageFolders(Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset.bin.gz"), imageFolder);
Console.WriteLine($"\n{train.Count} training and {test.Count} test images under {imageFolder}");

var ml = new MLContext(seed: 1);
var trainView = ml.Data.LoadFromEnumerable(train);
var testView = ml.Data.LoadFromEnumerable(test);
var options = new RegNetTrainer.Options
{
    Architecture = "X002",
    ImageSize = 64,
    BatchSize = 64,
    MaxEpochs = epochs,
    LearningRate = 1e-3,
    WeightDecay = 5e-5,
    WeightDecaySemantics = WeightDecaySemantics.Decoupled,
    WarmupEpochs = 1,
    WarmupFactor = 0.1,
    Schedule = LearningRateScheduleKind.HalfCosine,
    ScheduleGranularity = ScheduleGranularity.PerStep,
    // Fashion-MNIST recipe: random horizontal flip only (the whole 28×28 image, resized), gray copied to RGB.
    Augmentation = AugmentationOptions.Training(areaFactor: 1.0) with { MinAspectRatio = 1, MaxAspectRatio = 1, LightingStd = 0 },
    Normalization = ImageNormalization.Uniform(0.286f, 0.353f),
    CropFraction = 1.0,
    WorkspacePath = workspace,
    LogEveryNSteps = 5,
    MetricsCallback = m => { if (m.Phase != MetricsPhase.TrainSteps) Console.WriteLine(m); },
};
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.LoadImages("Image", imageFolder, nameof(ImageRow.ImagePath)))
    .Append(ml.MulticlassClassification.Trainers.RegNet(options))
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));

var clock = System.Diagnostics.Stopwatch.StartNew();
var model = pipeline.Fit(trainView);
Console.WriteLine($"Trained in {clock.Elapsed.TotalSeconds:F0} s");

var metrics = ml.MulticlassClassification.Evaluate(model.Transform(testView), topKPredictionCount: 5);
Console.WriteLine($"Test top-1 {metrics.MicroAccuracy:P1}, top-5 {metrics.TopKAccuracy:P1}, log-loss {metrics.LogLoss:F3} on {test.Count} images");
Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());

string modelPath = Path.Combine(workspace, "model.zip");
ml.Model.SaveAtomically(model, trainView.Schema, modelPath);
var loaded = new MLContext().Model.Load(modelPath, out _);
var trainedScores = ml.Data.CreateEnumerable<Prediction>(model.Transform(testView), false).ToList();
var loadedScores = ml.Data.CreateEnumerable<Prediction>(loaded.Transform(testView), false).ToList();
int sameLabels = trainedScores.Zip(loadedScores).Count(z => z.First.PredictedClass == z.Second.PredictedClass);
double largest = trainedScores.Zip(loadedScores).Max(z => z.First.Score.Zip(z.Second.Score).Max(p => Math.Abs(p.First - p.Second)));
Console.WriteLine($"Trained vs reloaded model on the {test.Count} test images: {sameLabels} labels identical, largest probability difference {largest:E1}");
var engine = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(loaded);
var first = engine.Predict(test[0]);
Console.WriteLine($"Saved to {modelPath}; reloaded model says {test[0].ImagePath} is a {first.PredictedClass} (true: {test[0].Label}).");
Console.WriteLine("Score image files in a fresh process that needs neither TorchSharp nor this library:");
Console.WriteLine($"  dotnet run -c Release --project samples/RegNetML.Scoring -- \"{modelPath}\" \"{Path.Combine(imageFolder, test[0].ImagePath)}\" \"{Path.Combine(imageFolder, test[1].ImagePath)}\"");

public sealed class Prediction
{
    public string PredictedClass { get; set; } = "";
    public float[] Score { get; set; } = [];
}
