// The C# examples of README.md, as they stand there, each in a method whose parameters are the example's free
// variables. The project has only the usings the README's examples show, so building it checks that those are enough;
// tests/Microsoft.ML.RegNet.Tests/PublicSurfaceTests.cs checks that every README example is here line for line.
// Nothing here runs: Main only says so.
using Microsoft.ML;
using Microsoft.ML.RegNet;

internal static class ReadmeExamples
{
    private static void Main() =>
        Console.WriteLine("The README's examples are compiled here, not run; see samples/RegNetML.QuickStart for a run.");

    internal static void QuickStart(MLContext mlContext, string imageFolder, IDataView train, IDataView test)
    {
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.Transforms.LoadImages("Image", imageFolder, "ImagePath"))
            .Append(mlContext.MulticlassClassification.Trainers.RegNet("X040"))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        var model = pipeline.Fit(train);
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(test), topKPredictionCount: 5);
        mlContext.Model.SaveAtomically(model, train.Schema, "model.zip");   // Save, but an old model.zip survives a failure
    }

    internal static void TrainingOptionsExportAndAugmentation(MLContext mlContext, IDataView train, IDataView images)
    {
        TorchRuntimeReport runtime = TorchRuntime.Configure();   // libtorch set-up (every entry point calls it; once per process)
        var options = new RegNetTrainer.Options
        {
            Architecture = "Y016", ImageSize = 160, BatchSize = 64, MaxEpochs = 30, LearningRate = 2e-3,
            Augmentation = AugmentationOptions.Training(areaFactor: 0.25), Mixing = new MixingOptions { MixupAlpha = 0.2 },
            ValidationFraction = 0.1, EarlyStopping = new EarlyStoppingOptions(Patience: 5), WorkspacePath = "runs",
            MetricsCallback = m => Console.WriteLine(m),
        };
        RegNetTransformer trained = mlContext.MulticlassClassification.Trainers.RegNet(options).Fit(train);
        RegNetOnnxExporter.Export(trained.Model, "regnet.onnx", new OnnxExportOptions { ProbabilitiesOutputName = "probabilities" });

        // Augmentation for another ML.NET trainer, and the evaluation transform that goes in its pipeline:
        var augmented = mlContext.Data.RandomResizedCrop(images, "Image", imageSize: 224, areaFactor: 0.08);
        augmented = mlContext.Data.RandomHorizontalFlip(augmented, "Image");
        var evaluationCrop = mlContext.Transforms.EvaluationCrop("Image", imageSize: 224);
    }

    internal static void WeightFiles(IReadOnlyList<string> classNames)
    {
        using var model = new RegNetModel(RegNetSpec.FromName("X002"), numberOfClasses: 10);
        WeightFileReport report = RegNetWeights.Load(model, "regnetx002.h5");      // head re-initialised: 1000 → 10 classes
        PreprocessingSpec pre = report.Preprocessing;                              // feed images the way the weights expect
        Console.WriteLine(report);                                                 // loaded / missing / unexpected / mismatched, notes

        RegNetWeights.Save(model, "pets.regnet.safetensors", classNames);          // own format
        LoadedRegNet again = RegNetWeights.LoadModel("pets.regnet.safetensors");   // architecture, classes, preprocessing from the file
        RegNetWeights.SaveSafetensors(model, "pets.safetensors");                  // plain timm-layout safetensors for Python
    }

    internal static void FineTuning(MLContext mlContext)
    {
        // Published weights by name, with their preprocessing (Keras: 1/255 and TensorFlow "same" padding), stem and stages frozen:
        var fineTune = mlContext.MulticlassClassification.Trainers.RegNet(new RegNetTrainer.Options
        {
            Architecture = "X002", Pretrained = PretrainedSource.Keras, FreezeStages = 4, MaxEpochs = 20,
            Augmentation = AugmentationOptions.Evaluation(),   // no augmentation: later epochs train on cached trunk outputs
        });
        // Or pooled features (include_top=False) for any ML.NET trainer; the pipeline saves and loads like any other:
        var featurePipeline = mlContext.Transforms.RegNetFeatures("Features", "Image", "X002", PretrainedSource.Keras)
            .Append(mlContext.MulticlassClassification.Trainers.SdcaMaximumEntropy("Label", "Features"));
    }
}
