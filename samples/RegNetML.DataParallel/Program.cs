// Data-parallel training: the same program runs as every process of an MPI job, and RegNetTrainer does the rest.
//   dotnet build -c Release samples/RegNetML.DataParallel
//   TERM=dumb mpirun -np 2 dotnet samples/RegNetML.DataParallel/bin/Release/net10.0/RegNetML.DataParallel.dll
// (add --allow-run-as-root as root). Every rank reads its own half of the rows each epoch, gradients are averaged over
// the ranks after every step, and only rank 0 logs, writes the run folder and saves the model. Without mpirun the same
// program trains in one process. See docs/data_parallel.md.
using Microsoft.ML;
using Microsoft.ML.RegNet;

int epochs = args.Length > 0 ? int.Parse(args[0]) : 2;
string workspace = args.Length > 1 ? args[1] : Path.Combine(Path.GetTempPath(), "regnetml-dataparallel");
int batchSize = args.Length > 2 ? int.Parse(args[2]) : 32;
int rank = DataParallelEnvironment.Rank, ranks = DataParallelEnvironment.LaunchedWorldSize;

// Each rank writes the embedded images to its own folder (on several machines each has its local copy).
string imageFolder = Path.Combine(workspace, $"images-rank{rank}");
var (train, test) = FashionMnistFiles.WriteImageFolders(Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset.bin.gz"), imageFolder);
if (rank == 0) Console.WriteLine($"{ranks} rank(s); {train.Count} training and {test.Count} test images");

var ml = new MLContext(seed: 1);
// The trainer's own summary of the job (world size, time in gradient allreduces), from rank 0.
ml.Log += (_, e) => { if (rank == 0 && e.Message.Contains("Data-parallel", StringComparison.Ordinal)) Console.WriteLine(e.Message); };
var options = new RegNetTrainer.Options
{
    Architecture = "X002",
    ImageSize = 32,
    BatchSize = batchSize,                // per rank: one step trains BatchSize × ranks images
    MaxEpochs = epochs,
    LearningRate = 1e-3,
    LearningRateReferenceBatchSize = 64,  // linear scaling: the rate follows the global batch (32 × ranks)
    WarmupEpochs = 1,
    Augmentation = AugmentationOptions.Training(areaFactor: 1.0) with { MinAspectRatio = 1, MaxAspectRatio = 1, LightingStd = 0 },
    Normalization = ImageNormalization.Uniform(0.286f, 0.353f),
    CropFraction = 1.0,
    WorkspacePath = workspace,
    LogEveryNSteps = 10,
    DataParallel = DataParallelMode.Auto, // the default: data-parallel when started by mpirun with more than one process
    MetricsCallback = m => { if (m.Phase != MetricsPhase.TrainSteps) Console.WriteLine(m); }, // called on rank 0 only
};
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.LoadRawImageBytes("Image", imageFolder, nameof(ImageRow.ImagePath)))
    .Append(ml.MulticlassClassification.Trainers.RegNet(options));

var clock = System.Diagnostics.Stopwatch.StartNew();
var trainView = ml.Data.LoadFromEnumerable(train);
var model = pipeline.Fit(trainView);
Console.WriteLine($"rank {rank}: trained in {clock.Elapsed.TotalSeconds:F1} s");

// Every rank holds the same model now; rank 0 evaluates and saves it.
if (rank == 0)
{
    var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(test)));
    Console.WriteLine($"Test top-1 {metrics.MicroAccuracy:P1}, log-loss {metrics.LogLoss:F3} on {test.Count} images");
    string modelPath = Path.Combine(workspace, "model.zip");
    ml.Model.SaveAtomically(model, trainView.Schema, modelPath);
    Console.WriteLine($"Saved to {modelPath}");
}
return 0;

