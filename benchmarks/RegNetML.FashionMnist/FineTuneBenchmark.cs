// Time to accuracy of fine-tuning (docs/benchmarks.md, issue 15): a source model trained on Fashion-MNIST classes 0–4
// (RegNetX-002 at 64 px, the first N images of each class, saved as timm-layout safetensors under the file name of timm's X002 weights), fine-tuned to
// classes 5–9 from a few images per class: (a) from random weights, (b) end to end from the source, (c) stem and all four
// stages frozen, without the trunk cache, (d) the same with the cache (the decoded image cache is on for (a)–(c) as in any run
// without augmentation; --image-cache-mb 0 turns it off), (e) (d) for the first epochs, then the
// second phase: everything trains, with layer-wise learning-rate decay (--unfreeze-after, default 2; --layer-decay, default 0.8). Every variant: same images, seed, epochs, batch,
// AdamW lr 1e-3, half-cosine per step, no augmentation (the trunk cache needs deterministic inputs), ImageNet mean/std
// (the timm file's). Wall time is Fit's (reading the PNG files, training, the ONNX export at its end), accuracy is on
// 200 test images per class. benchmarks/run_finetune.sh runs this and benchmarks/fashion_mnist/finetune_pytorch.py.
// With --images-in-memory the same images come as decoded MLImage rows held in memory instead of PNG files (the ML.NET
// counterpart of PyTorch holding them in one tensor): no file is read and nothing decoded, the trainer resizes them.
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet;
using Microsoft.ML.Transforms.Image;

internal static class FineTuneBenchmark
{
    private const string Source = "/usr/share/datasets/fashion-mnist";

    /// <summary>Every variant's <see cref="RegNetTrainer.Options.DecodedImageCacheMegabytes"/> (--image-cache-mb; the default otherwise).</summary>
    public static int? ImageCacheMegabytes { get; set; }

    /// <summary>Every variant reads MLImage rows held in memory instead of the PNG files (--images-in-memory).</summary>
    public static bool ImagesInMemory { get; set; }

    public static int Run(string folder, int perClass, int epochs, int sourcePerClass, int sourceEpochs, int threads, string variantLetters,
        int unfreezeAfter, double layerDecay)
    {
        string weights = Path.Combine(folder, "weights");
        string file = Path.Combine(weights, PretrainedCatalog.File("X002", PretrainedSource.Timm).FileName);
        var train = FashionMnistFiles.ReadIdx(Source, "train");
        var test = FashionMnistFiles.ReadIdx(Source, "t10k");
        if (!File.Exists(file)) MakeSourceModel(folder, train, file, sourcePerClass, sourceEpochs, threads);
        else Console.WriteLine($"Source model: {file} (delete it to train it again)");

        // Loading libtorch and its one-time self-test happen before any timing, as `import torch` does for PyTorch.
        var runtime = Stopwatch.StartNew();
        TorchRuntime.Configure();
        Console.WriteLine($"libtorch loaded and configured in {runtime.Elapsed.TotalSeconds:F2} s (not timed below)");
        var target = Write(folder, "target-train", train, label => label >= 5, perClass);
        var targetTest = Write(folder, "target-test", test, label => label >= 5, 200);
        Console.WriteLine($"Fine-tuning on classes 5-9: {target.Count} training images ({perClass} per class), {targetTest.Count} test images, {epochs} epochs");
        var pretrained = new PretrainedOptions { LocalDirectory = weights, CacheDirectory = weights, Offline = true, AllowUnverified = true };
        var variants = new (string Name, Action<RegNetTrainer.Options> Set)[]
        {
            ("(a) random weights, end to end", o => o.Normalization = ImageNormalization.ImageNet),
            ("(b) from the source, end to end", o => { o.Pretrained = PretrainedSource.Timm; o.PretrainedOptions = pretrained; }),
            ("(c) frozen trunk, no trunk cache", o => { o.Pretrained = PretrainedSource.Timm; o.PretrainedOptions = pretrained; o.FreezeStages = 4; o.CacheFrozenTrunk = false; }),
            ("(d) frozen trunk, trunk cache", o => { o.Pretrained = PretrainedSource.Timm; o.PretrainedOptions = pretrained; o.FreezeStages = 4; }),
            (string.Create(CultureInfo.InvariantCulture, $"(e) (d) for {unfreezeAfter} epoch(s), then unfrozen, layer decay {layerDecay}"), o =>
            {
                o.Pretrained = PretrainedSource.Timm; o.PretrainedOptions = pretrained; o.FreezeStages = 4;
                o.UnfreezeAfterEpochs = unfreezeAfter; o.LayerDecay = layerDecay;
            }),
        };
        Console.WriteLine("| variant | test top-1 | Fit wall time | first epoch | mean of later epochs |");
        Console.WriteLine("|---|---|---|---|---|");
        var (memoryTrain, memoryTest) = ImagesInMemory
            ? (InMemory(train, label => label >= 5, perClass), InMemory(test, label => label >= 5, 200))
            : (new List<MemoryRow>(), new List<MemoryRow>());
        foreach (var (name, set) in variants.Where(v => variantLetters.Contains(v.Name[1])))
        {
            var options = Options(epochs, threads);
            set(options);
            if (ImageCacheMegabytes is { } megabytes) options.DecodedImageCacheMegabytes = megabytes;
            var ml = new MLContext(seed: 1);
            var (accuracy, seconds, epochTimes) = ImagesInMemory
                ? FitAndEvaluate(ml, ml.Transforms.Conversion.MapValueToKey("Label", nameof(MemoryRow.Label)), options, memoryTrain, memoryTest)
                : FitAndEvaluate(ml, ml.Transforms.Conversion.MapValueToKey("Label", nameof(ImageRow.Label))
                    .Append(ml.Transforms.LoadRawImageBytes("Image", folder, nameof(ImageRow.ImagePath))), options, target, targetTest);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| RegNetML {name}{(ImagesInMemory ? ", images in memory" : "")} | {accuracy:P1} | {seconds:F1} s | {epochTimes[0]:F2} s | {epochTimes.Skip(1).DefaultIfEmpty().Average():F3} s |"));
            Console.Error.WriteLine($"  epoch times of {name[..3]}: {string.Join(" ", epochTimes.Select(t => t.ToString("F2", CultureInfo.InvariantCulture)))} s");
        }
        return 0;
    }

    private static RegNetTrainer.Options Options(int epochs, int threads) => new()
    {
        Architecture = "X002", ImageSize = 64, BatchSize = 32, MaxEpochs = epochs, LearningRate = 1e-3, WeightDecay = 5e-5,
        Augmentation = AugmentationOptions.Evaluation(1.0), CropFraction = 1.0, Seed = 1, NumberOfThreads = threads, WorkerThreads = 1,
        LogEveryNSteps = 1000,
    };

    // The rows' image column reaches the trainer as "Image" through `load` (LoadRawImageBytes for files, nothing for MLImage rows).
    private static (double Accuracy, double Seconds, List<double> EpochSeconds) FitAndEvaluate<TRow>(MLContext ml, IEstimator<ITransformer> load,
        RegNetTrainer.Options options, List<TRow> train, List<TRow> test) where TRow : class
    {
        var epochTimes = new List<double>();
        var clock = Stopwatch.StartNew();
        double last = 0;
        options.MetricsCallback = m =>
        {
            if (m.Phase != MetricsPhase.TrainEpoch) return;
            epochTimes.Add(clock.Elapsed.TotalSeconds - last);
            last = clock.Elapsed.TotalSeconds;
        };
        var pipeline = load.Append(ml.MulticlassClassification.Trainers.RegNet(options));
        var trainView = ml.Data.LoadFromEnumerable(train);
        clock.Restart();
        var model = pipeline.Fit(trainView);
        double seconds = clock.Elapsed.TotalSeconds;
        // Epoch times are measured from the start of Fit: the first includes loading the weights.
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(test)));
        return (metrics.MicroAccuracy, seconds, epochTimes);
    }

    // Classes 0-4, the first perClass images of each, trained like the fine-tuning variants but with batch 128 and flips.
    private static void MakeSourceModel(string folder, List<(int Label, byte[] Pixels)> train, string file, int perClass, int epochs, int threads)
    {
        var rows = Write(folder, "source-train", train, label => label < 5, perClass);
        Console.WriteLine($"Training the source model on classes 0-4 ({rows.Count} images, {epochs} epochs) ...");
        var clock = Stopwatch.StartNew();
        var options = Options(epochs, threads);
        options.BatchSize = 128;
        options.Normalization = ImageNormalization.ImageNet;
        options.Augmentation = AugmentationOptions.Training(areaFactor: 1.0) with { MinAspectRatio = 1, MaxAspectRatio = 1, LightingStd = 0, CropFraction = 1.0 };
        var ml = new MLContext(seed: 1);
        var model = ml.Transforms.Conversion.MapValueToKey("Label", nameof(ImageRow.Label))
            .Append(ml.Transforms.LoadRawImageBytes("Image", folder, nameof(ImageRow.ImagePath)))
            .Append(ml.MulticlassClassification.Trainers.RegNet(options))
            .Fit(ml.Data.LoadFromEnumerable(rows));
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        RegNetWeights.SaveSafetensors(model.LastTransformer.Model, file);
        Console.WriteLine($"Source model saved to {file} in {clock.Elapsed.TotalSeconds:F0} s");
    }

    private sealed class MemoryRow
    {
        [ImageType(28, 28)]
        public MLImage Image { get; set; } = null!;
        public string Label { get; set; } = "";
    }

    // The rows Write would list, as decoded images (gray in all three channels) instead of files.
    private static List<MemoryRow> InMemory(List<(int Label, byte[] Pixels)> images, Func<int, bool> select, int perClass) =>
        Selected(images, select, perClass).Select(i => new MemoryRow
        {
            Image = MLImage.CreateFromPixels(28, 28, MLPixelFormat.Bgra32, images[i].Pixels.SelectMany(v => new[] { v, v, v, (byte)255 }).ToArray()),
            Label = FashionMnistFiles.ClassNames[images[i].Label],
        }).ToList();

    // The first `perClass` images of each selected class, in file order.
    private static IEnumerable<int> Selected(List<(int Label, byte[] Pixels)> images, Func<int, bool> select, int perClass)
    {
        var taken = new Dictionary<int, int>();
        for (int i = 0; i < images.Count; i++)
        {
            int label = images[i].Label;
            if (!select(label) || taken.GetValueOrDefault(label) >= perClass) continue;
            taken[label] = taken.GetValueOrDefault(label) + 1;
            yield return i;
        }
    }

    // The first `perClass` images of each selected class, as PNG files (written once) under folder/part.
    private static List<ImageRow> Write(string folder, string part, List<(int Label, byte[] Pixels)> images, Func<int, bool> select, int perClass) =>
        Selected(images, select, perClass).Select(i =>
        {
            var (label, pixels) = images[i];
            string relative = Path.Combine(part, label.ToString(CultureInfo.InvariantCulture), $"{i:D5}.png");
            FashionMnistFiles.WritePng(pixels, Path.Combine(folder, relative));
            return new ImageRow { ImagePath = relative, Label = FashionMnistFiles.ClassNames[label] };
        }).ToList();
}
