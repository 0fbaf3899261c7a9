// Fashion-MNIST benchmark (docs/benchmarks.md): the full data set from Debian's dataset-fashion-mnist, written as PNG
// files in an image-folder layout, trained through the real ML.NET path with the recipe of
// benchmarks/fashion_mnist/train_pytorch.py. Usage: RegNetML.FashionMnist [epochs=3] [folder=/tmp/fashion-mnist-png] [--load-images]
// With --parity [--image-size N] [--crop-fraction F] [--train-images N] it checks instead that the saved model is the trained one: trains with
// LoadImages at that size and crop (default 64 and 0.875, so every image is upscaled), saves, loads in a fresh MLContext
// and compares labels and probabilities on the first 1,000 test images (Transform and PredictionEngine).
// With --finetune [--per-class N] [--source-per-class N] [--source-epochs N] [--variants abcde] [--unfreeze-after 2] [--layer-decay 0.8] [--image-cache-mb N] [--images-in-memory] it runs the fine-tuning time-to-accuracy
// benchmark (FineTuneBenchmark.cs; benchmarks/run_finetune.sh runs it beside PyTorch); epochs are then the fine-tuning epochs.
// With --transform-throughput it times bulk RegNetTransformer.Transform (X002, 64 px) over 2,000 test images.
// Data-parallel (docs/data_parallel.md): mpirun -np 2 dotnet RegNetML.FashionMnist.dll 3 FOLDER --batch-size 64 --threads 1
// keeps the recipe's global batch of 128; only rank 0 prints and evaluates. Write the PNG files first with one process
// (any run without mpirun): files that exist are kept, but two ranks writing the same new file would race.
using Microsoft.ML;
using Microsoft.ML.RegNet;

int epochs = args.Length > 0 && int.TryParse(args[0], out var e) ? e : 3;
string folder = args.Length > 1 && !args[1].StartsWith("--") ? args[1] : "/tmp/fashion-mnist-png";
bool loadImages = args.Contains("--load-images");
bool parity = args.Contains("--parity");
int imageSize = OptionValue("--image-size") is { } size ? int.Parse(size) : 64;
double cropFraction = OptionValue("--crop-fraction") is { } crop ? double.Parse(crop, System.Globalization.CultureInfo.InvariantCulture) : 0.875;
const string Source = "/usr/share/datasets/fashion-mnist";
if (!File.Exists(Path.Combine(Source, "train-images-idx3-ubyte.gz")))
{
    Console.Error.WriteLine($"{Source} not found: apt-get install dataset-fashion-mnist");
    return 2;
}

if (OptionValue("--image-cache-mb") is { } imageCache) FineTuneBenchmark.ImageCacheMegabytes = int.Parse(imageCache);
FineTuneBenchmark.ImagesInMemory = args.Contains("--images-in-memory");
if (args.Contains("--finetune"))
    return FineTuneBenchmark.Run(folder, OptionValue("--per-class") is { } pc ? int.Parse(pc) : 30, epochs,
        OptionValue("--source-per-class") is { } sp ? int.Parse(sp) : 300, OptionValue("--source-epochs") is { } se ? int.Parse(se) : 1,
        OptionValue("--threads") is { } th ? int.Parse(th) : 2, OptionValue("--variants") ?? "abcde",
        OptionValue("--unfreeze-after") is { } ua ? int.Parse(ua) : 2,
        OptionValue("--layer-decay") is { } ld ? double.Parse(ld, System.Globalization.CultureInfo.InvariantCulture) : 0.8);

int batchSize = OptionValue("--batch-size") is { } batch ? int.Parse(batch) : 128;
int threads = OptionValue("--threads") is { } t ? int.Parse(t) : 2;
bool root = DataParallelEnvironment.IsRoot;
var prepare = System.Diagnostics.Stopwatch.StartNew();
var train = WriteFolder("train", Path.Combine(folder, "train"));
var test = WriteFolder("t10k", Path.Combine(folder, "test"));
if (args.Contains("--transform-throughput")) return TransformThroughput.Run(folder, train, test, 2000);
if (parity) return SavedModelParity.Run(folder, train, test, epochs, imageSize, cropFraction,
    OptionValue("--train-images") is { } n ? int.Parse(n) : 10_000);
if (root) Console.WriteLine($"{train.Count} train / {test.Count} test PNG files ready in {prepare.Elapsed.TotalSeconds:F0} s (not counted below)");

var clock = System.Diagnostics.Stopwatch.StartNew();
var ml = new MLContext(seed: 1);
if (root) ml.Log += (_, e) => { if (e.Message.Contains("Data-parallel over")) Console.WriteLine(e.Message); };
var options = new RegNetTrainer.Options
{
    Architecture = "X002", ImageSize = 64, BatchSize = batchSize, MaxEpochs = epochs,
    LearningRate = 1e-3, WeightDecay = 5e-5, WeightDecaySemantics = WeightDecaySemantics.Decoupled,
    WarmupEpochs = 1, WarmupFactor = 0.1, Schedule = LearningRateScheduleKind.HalfCosine, ScheduleGranularity = ScheduleGranularity.PerStep,
    Augmentation = AugmentationOptions.Training(areaFactor: 1.0) with { MinAspectRatio = 1, MaxAspectRatio = 1, LightingStd = 0 },
    Normalization = ImageNormalization.Uniform(0.286f, 0.353f), CropFraction = 1.0, NumberOfThreads = threads, WorkerThreads = 1,
    LogEveryNSteps = 100, MetricsCallback = m => Console.WriteLine($"{clock.Elapsed.TotalSeconds,6:F0} s  {m}"),
};
IEstimator<ITransformer> load = loadImages
    ? ml.Transforms.LoadImages("Image", folder, "Path")
    : ml.Transforms.LoadRawImageBytes("Image", folder, "Path");
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(load).Append(ml.MulticlassClassification.Trainers.RegNet(options));
var model = pipeline.Fit(ml.Data.LoadFromEnumerable(train));
double trainSeconds = clock.Elapsed.TotalSeconds;
if (!root) return 0;
var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(test)));
Console.WriteLine($"RegNetML ({TorchRuntime.ConvolutionSelfTest}; {TorchRuntime.NativeAllocator}): test top-1 {metrics.MicroAccuracy:F4}, " +
                  $"wall time {clock.Elapsed.TotalSeconds:F0} s (training {trainSeconds:F0} s; {DataParallelEnvironment.LaunchedWorldSize} process(es) x batch {batchSize} x {threads} thread(s))");
return 0;

string? OptionValue(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;

List<Row> WriteFolder(string kind, string output) => FashionMnistFiles.ReadIdx(Source, kind).Select((image, i) =>
{
    string label = image.Label.ToString(System.Globalization.CultureInfo.InvariantCulture);
    string relative = Path.Combine(Path.GetFileName(output), label, $"{i:D5}.png");
    FashionMnistFiles.WritePng(image.Pixels, Path.Combine(folder, relative));
    return new Row { Path = relative, Label = label };
}).ToList();

public sealed class Row
{
    public string Path { get; set; } = "";
    public string Label { get; set; } = "";
}
