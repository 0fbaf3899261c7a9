// Fine-tuning: train on five clothing classes, save the weights, then start a new model for the five other classes
// from that file: new class count (the classifier is re-initialised), stem and first two stages frozen.
// Usage: RegNetML.FineTuning [workspace] [source epochs=8] [fine-tuning epochs=4]
using Microsoft.ML;
using Microsoft.ML.RegNet;

string workspace = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "regnetml-finetuning");
int sourceEpochs = args.Length > 1 ? int.Parse(args[1]) : 8;
int fineTuneEpochs = args.Length > 2 ? int.Parse(args[2]) : 4;
string folder = Path.Combine(workspace, "images");
var (trainImages, testImages) = FashionMnistFiles.ReadSubset(Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset.bin.gz"));
var rows = trainImages.Concat(testImages).Select((image, i) =>
{
    string label = FashionMnistFiles.ClassNames[image.Label];
    string relative = Path.Combine(label, $"{i:D5}.png");
    FashionMnistFiles.WritePng(image.Pixels, Path.Combine(folder, relative));
    return new Row { ImagePath = relative, Label = label };
}).ToList();
var clothes = new HashSet<string> { "T-shirt", "Pullover", "Dress", "Coat", "Shirt" };
var ml = new MLContext(seed: 1);

RegNetTrainer.Options Recipe(int epochs) => new()
{
    Architecture = "X002", ImageSize = 64, BatchSize = 50, MaxEpochs = epochs, LearningRate = 1e-3, WarmupEpochs = 1,
    Augmentation = AugmentationOptions.Training(areaFactor: 1.0) with { MinAspectRatio = 1, MaxAspectRatio = 1, LightingStd = 0 },
    Normalization = ImageNormalization.Uniform(0.286f, 0.353f), CropFraction = 1.0,
    MetricsCallback = m => { if (m.Phase != MetricsPhase.TrainSteps) Console.WriteLine("  " + m); },
};

double Fit(string title, IEnumerable<Row> data, RegNetTrainer.Options options, out RegNetTransformer trained)
{
    Console.WriteLine(title);
    var split = ml.Data.TrainTestSplit(ml.Data.LoadFromEnumerable(data.ToList()), 0.2, seed: 1);
    var model = ml.Transforms.Conversion.MapValueToKey("Label")
        .Append(ml.Transforms.LoadImages("Image", folder, nameof(Row.ImagePath)))
        .Append(ml.MulticlassClassification.Trainers.RegNet(options))
        .Fit(split.TrainSet);
    trained = ((IEnumerable<ITransformer>)model).OfType<RegNetTransformer>().Single();
    return ml.MulticlassClassification.Evaluate(model.Transform(split.TestSet)).MicroAccuracy;
}

double source = Fit("1. Clothes (5 classes) from scratch", rows.Where(r => clothes.Contains(r.Label)), Recipe(sourceEpochs), out var clothesModel);
string weights = Path.Combine(workspace, "clothes.regnet.safetensors");
RegNetWeights.Save(clothesModel.Model, weights, clothesModel.ClassNames, clothesModel.Preprocessing);
Console.WriteLine($"   held-out top-1 {source:P1}; weights saved to {weights}");

var fineTune = Recipe(fineTuneEpochs);
fineTune.StartingWeightsPath = weights;
fineTune.FreezeStages = 2;
double target = Fit("2. Shoes, bags and trousers (5 new classes) from the clothes weights, stem and stages 1-2 frozen",
    rows.Where(r => !clothes.Contains(r.Label)), fineTune, out _);
Console.WriteLine($"   held-out top-1 {target:P1}");

public sealed class Row
{
    public string ImagePath { get; set; } = "";
    public string Label { get; set; } = "";
}
