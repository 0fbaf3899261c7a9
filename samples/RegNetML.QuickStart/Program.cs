// Quick start: train a RegNet on real images through the ordinary ML.NET path, evaluate it, save it and load it back.
// Data: a class-balanced subset of Fashion-MNIST (MIT licence) embedded in data/, written out as PNG files in an
// image-folder layout first, so the pipeline is exactly what a user runs on their own folder of images.
using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.RegNet.Configs;
using Microsoft.ML.RegNet.Data;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Training;
using SkiaSharp;

string[] classNames = { "T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" };
int epochs = args.Length > 0 ? int.Parse(args[0]) : 4;
string workspace = args.Length > 1 ? args[1] : Path.Combine(Path.GetTempPath(), "regnetml-quickstart");

Console.WriteLine("The 24 RegNet ImageNet models (1000 classes, 224×224):");
Console.WriteLine($"{"model",-11} {"depths",-14} {"widths",-22} {"params",12} {"GFLOPs",7}");
foreach (var spec in RegNetSpec.All)
    Console.WriteLine($"{spec.Name,-11} {string.Join(' ', spec.StageDepths),-14} {string.Join(' ', spec.StageWidths),-22} {spec.ParameterCount(),12:N0} {spec.Flops() / 1e9,7:F2}");

string imageFolder = Path.Combine(workspace, "images");
var (train, test) = WriteImageFolders(Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset.bin.gz"), imageFolder, classNames);
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
ml.Model.Save(model, trainView.Schema, modelPath);
var loaded = new MLContext().Model.Load(modelPath, out _);
var engine = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(loaded);
var first = engine.Predict(test[0]);
Console.WriteLine($"Saved to {modelPath}; reloaded model says {test[0].ImagePath} is a {first.PredictedClass} (true: {test[0].Label}).");

static (List<ImageRow> Train, List<ImageRow> Test) WriteImageFolders(string subset, string folder, string[] classes)
{
    using var file = new GZipStream(File.OpenRead(subset), CompressionMode.Decompress);
    using var reader = new BinaryReader(file);
    if (new string(reader.ReadChars(4)) != "FMNS") throw new InvalidDataException($"{subset} is not a Fashion-MNIST subset file.");
    int trainCount = reader.ReadInt32(), testCount = reader.ReadInt32();
    var rows = new List<ImageRow>();
    for (int i = 0; i < trainCount + testCount; i++)
    {
        string label = classes[reader.ReadByte()];
        byte[] pixels = reader.ReadBytes(28 * 28);
        string relative = Path.Combine(i < trainCount ? "train" : "test", label, $"{i:D5}.png");
        string path = Path.Combine(folder, relative);
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using var bitmap = new SKBitmap(new SKImageInfo(28, 28, SKColorType.Gray8));
            System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
            using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
            using var output = File.Create(path);
            png.SaveTo(output);
        }
        rows.Add(new ImageRow { ImagePath = relative, Label = label });
    }
    return (rows.Take(trainCount).ToList(), rows.Skip(trainCount).ToList());
}

public sealed class ImageRow
{
    public string ImagePath { get; set; } = "";
    public string Label { get; set; } = "";
}

public sealed class Prediction
{
    public string PredictedClass { get; set; } = "";
}
