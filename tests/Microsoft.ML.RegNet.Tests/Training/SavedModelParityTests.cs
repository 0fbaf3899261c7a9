using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.MLNet;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Training;
using SkiaSharp;

namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>
/// The model a user ships is the model they trained: a pipeline fitted in this process and the same pipeline after
/// Save → Load in a fresh MLContext give the same labels and probabilities (within 1e-4), through Transform and through
/// PredictionEngine, for images that the evaluation transform has to up- and downscale, in RGB, grayscale and with alpha.
/// </summary>
[TestClass]
public sealed class SavedModelParityTests
{
    private static readonly string[] Classes = ["warm", "cool", "green"];
    private static string _folder = "";
    private static List<ImageRow> _rows = [];

    public sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public sealed class Prediction
    {
        public float[] Score { get; set; } = [];
        public string PredictedClass { get; set; } = "";
    }

    [ClassInitialize]
    public static void MakeImages(TestContext _)
    {
        _folder = Directory.CreateTempSubdirectory("regnet-parity-").FullName;
        var random = new Random(7);
        // (width, height, kind): natural sizes, odd margins, tiny images that are upscaled, big ones that are downscaled.
        var shapes = new (int W, int H, SKColorType Type, SKAlphaType Alpha)[]
        {
            (28, 28, SKColorType.Gray8, SKAlphaType.Opaque), (100, 80, SKColorType.Rgba8888, SKAlphaType.Opaque),
            (45, 130, SKColorType.Rgba8888, SKAlphaType.Unpremul), (300, 211, SKColorType.Rgba8888, SKAlphaType.Opaque),
            (17, 23, SKColorType.Rgba8888, SKAlphaType.Opaque), (73, 73, SKColorType.Gray8, SKAlphaType.Opaque),
            (64, 64, SKColorType.Rgba8888, SKAlphaType.Unpremul), (257, 90, SKColorType.Rgba8888, SKAlphaType.Opaque),
        };
        int n = 0;
        for (int round = 0; round < 3; round++)
            foreach (var (w, h, type, alpha) in shapes)
            {
                int label = n % Classes.Length;
                using var bitmap = new SKBitmap(new SKImageInfo(w, h, type, alpha));
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        int noise = random.Next(-50, 50);
                        byte main = (byte)Math.Clamp(150 + noise + 80 * x / w, 0, 255), other = (byte)Math.Clamp(70 + random.Next(-50, 50), 0, 255);
                        byte a = alpha == SKAlphaType.Opaque ? (byte)255 : (byte)Math.Clamp(255 * y / h + random.Next(-20, 20), 0, 255);
                        bitmap.SetPixel(x, y, label switch
                        {
                            0 => new SKColor(main, other, other, a),
                            1 => new SKColor(other, other, main, a),
                            _ => new SKColor(other, main, other, a),
                        });
                    }
                string path = Path.Combine(_folder, $"{n:D3}_{w}x{h}.png");
                using (var data = bitmap.Encode(SKEncodedImageFormat.Png, 100))
                using (var file = File.Create(path)) data.SaveTo(file);
                _rows.Add(new ImageRow { ImagePath = path, Label = Classes[label] });
                n++;
            }
    }

    [ClassCleanup]
    public static void Cleanup()
    {
        try { Directory.Delete(_folder, recursive: true); } catch (IOException) { }
    }

    private static RegNetTrainer.Options Options(int imageSize, double cropFraction) => new()
    {
        Spec = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8, name: "tiny"), ImageSize = imageSize,
        CropFraction = cropFraction, BatchSize = 8, MaxEpochs = 6, LearningRate = 3e-3, Seed = 3, WorkerThreads = 2,
    };

    private static (MLContext Ml, IDataView View, ITransformer Model) Fit(RegNetTrainer.Options options, bool rawBytes)
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(_rows);
        IEstimator<ITransformer> load = rawBytes
            ? ml.Transforms.LoadRawImageBytes("Image", null, nameof(ImageRow.ImagePath))
            : ml.Transforms.LoadImages("Image", null, nameof(ImageRow.ImagePath));
        var model = ml.Transforms.Conversion.MapValueToKey("Label", nameof(ImageRow.Label))
            .Append(load)
            .Append(ml.MulticlassClassification.Trainers.RegNet(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"))
            .Fit(view);
        return (ml, view, model);
    }

    private static ITransformer SaveAndLoad(MLContext ml, ITransformer model, DataViewSchema schema, bool registerDecoder)
    {
        string path = Path.Combine(_folder, $"model-{Guid.NewGuid():N}.zip");
        ml.Model.Save(model, schema, path);
        var fresh = new MLContext(seed: 99);
        if (registerDecoder) fresh.ComponentCatalog.RegisterAssembly(typeof(RegNetImageBytesDecoder).Assembly);
        var loaded = fresh.Model.Load(path, out _);
        File.Delete(path);
        return loaded;
    }

    [TestMethod]
    [DataRow(64, 0.875, false, DisplayName = "64 px, default crop, LoadImages")]
    [DataRow(32, 0.875, false, DisplayName = "32 px, default crop, LoadImages")]
    [DataRow(48, 1.0, false, DisplayName = "48 px, whole image, LoadImages")]
    [DataRow(64, 0.875, true, DisplayName = "64 px, default crop, LoadRawImageBytes")]
    public void TrainedAndReloadedPipelinesAgree(int imageSize, double cropFraction, bool rawBytes)
    {
        var (ml, view, model) = Fit(Options(imageSize, cropFraction), rawBytes);
        var loaded = SaveAndLoad(ml, model, view.Schema, registerDecoder: rawBytes);

        var before = ml.Data.CreateEnumerable<Prediction>(model.Transform(view), reuseRowObject: false).ToList();
        var after = ml.Data.CreateEnumerable<Prediction>(loaded.Transform(view), reuseRowObject: false).ToList();
        AssertSame(before, after, "Transform: trained vs reloaded");
        Assert.IsGreaterThan(1, before.Select(p => p.PredictedClass).Distinct().Count(), "a model that predicts one class everywhere proves little");

        // PredictionEngine on the freshly fitted pipeline (row by row) and on the loaded one.
        using var fittedEngine = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(model);
        using var loadedEngine = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(loaded);
        var fromFitted = _rows.Select(r => Copy(fittedEngine.Predict(r))).ToList();
        var fromLoaded = _rows.Select(r => Copy(loadedEngine.Predict(r))).ToList();
        AssertSame(before, fromFitted, "PredictionEngine on the fitted pipeline vs its batched Transform");
        AssertSame(fromFitted, fromLoaded, "PredictionEngine: fitted vs loaded");

        var trainedMetrics = ml.MulticlassClassification.Evaluate(model.Transform(view));
        var loadedMetrics = ml.MulticlassClassification.Evaluate(loaded.Transform(view));
        Assert.AreEqual(trainedMetrics.MicroAccuracy, loadedMetrics.MicroAccuracy, 1e-12, "Evaluate: accuracy");
        Assert.AreEqual(trainedMetrics.LogLoss, loadedMetrics.LogLoss, 1e-4, "Evaluate: log-loss");
        Assert.AreEqual(before.Zip(_rows).Count(z => z.First.PredictedClass == z.Second.Label) / (double)_rows.Count, trainedMetrics.MicroAccuracy, 1e-12,
            "Evaluate counts the rows whose predicted class is the label");

        var score = loaded.Transform(view).Schema["Score"];
        VBuffer<ReadOnlyMemory<char>> slots = default;
        score.GetSlotNames(ref slots);
        CollectionAssert.AreEqual(Classes, slots.DenseValues().Select(s => s.ToString()).ToArray(), "the loaded Score keeps the class names");
    }

    [TestMethod]
    public void At224WithTheDefaultCropTheReloadedModelAgreesToo()
    {
        var (ml, view, model) = Fit(Options(224, 0.875), rawBytes: false);
        var loaded = SaveAndLoad(ml, model, view.Schema, registerDecoder: false);
        AssertSame(ml.Data.CreateEnumerable<Prediction>(model.Transform(view), false).ToList(),
            ml.Data.CreateEnumerable<Prediction>(loaded.Transform(view), false).ToList(), "224 px");
    }

    [TestMethod]
    public void PredictionEnginesOnEightThreadsGiveTheSingleThreadedResultsWithFlatMemory()
    {
        // As ML.NET apps deploy (PredictionEnginePool): one engine per thread over one shared model.
        var (ml, view, model) = Fit(Options(32, 0.875), rawBytes: false);
        var loaded = SaveAndLoad(ml, model, view.Schema, registerDecoder: false);
        foreach (var (name, transformer) in new[] { ("fitted", model), ("loaded", loaded) })
        {
            // The engines share the model: they must not dispose it (ML.NET's default for an engine is to own its model).
            var shared = new PredictionEngineOptions { OwnsTransformer = false };
            List<Prediction> reference;
            using (var engine = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(transformer, shared))
                reference = _rows.Select(r => Copy(engine.Predict(r))).ToList();
            const int threads = 8, perThread = 500;
            long before = 0;
            var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
            void Run(int from, int count)
            {
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                {
                    using var engine = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(transformer, shared);
                    for (int i = from; i < from + count; i++)
                    {
                        int row = (i * 7 + t) % _rows.Count;
                        var p = engine.Predict(_rows[row]);
                        if (p.PredictedClass != reference[row].PredictedClass || !p.Score.SequenceEqual(reference[row].Score))
                            failures.Add($"{name}: thread {t}, prediction {i}, row {row}");
                    }
                });
            }
            Run(0, 50); // warm-up: allocators and thread pools reach their working size
            GC.Collect();
            GC.WaitForPendingFinalizers();
            before = Environment.WorkingSet;
            Run(50, perThread - 50);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            long growth = Environment.WorkingSet - before;
            Assert.IsEmpty(failures, $"{failures.Count} predictions differ from the single-threaded ones, e.g. {failures.FirstOrDefault()}");
            Assert.IsLessThan(150L << 20, growth, $"{name}: resident memory grew by {growth >> 20} MiB over {threads * (perThread - 50)} predictions");
        }
    }

    [TestMethod]
    public void SavingOverAnExistingModelNeedsNothingThatCanFail()
    {
        // ML.NET's Model.Save(path) truncates the file before any transformer is asked to save itself, so a transformer
        // that failed there would destroy the user's previous model. The RegNet transformer copies its weights when it is
        // made and builds the ONNX model from that copy when first saved (Fit does not pay for it), so saving works even
        // after it was disposed, and a model on encoded bytes saves as well.
        var (ml, view, model) = Fit(Options(32, 0.875), rawBytes: true);
        var regnet = ((IEnumerable<ITransformer>)model).OfType<RegNetTransformer>().Single();
        var expected = ml.Data.CreateEnumerable<Prediction>(model.Transform(view), false).ToList();
        Assert.IsFalse(regnet.ScoringOnnxBuilt, "Fit and Transform do not build the ONNX model");
        string path = Path.Combine(_folder, "existing.zip");
        File.WriteAllBytes(path, [1, 2, 3]); // the model saved before
        regnet.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => model.Transform(view));
        ml.Model.Save(model, view.Schema, path); // the first save, over the existing file, with the trained network disposed
        Assert.IsTrue(regnet.ScoringOnnxBuilt);
        var fresh = new MLContext();
        fresh.ComponentCatalog.RegisterAssembly(typeof(RegNetImageBytesDecoder).Assembly);
        var loaded = fresh.Model.Load(path, out _);
        AssertSame(expected, ml.Data.CreateEnumerable<Prediction>(loaded.Transform(view), false).ToList(), "saved after Dispose");
    }

    public sealed class PathOnly
    {
        public string ImagePath { get; set; } = "";
    }

    public sealed class PathLength
    {
        public int Length { get; set; }
    }

    [TestMethod]
    public void SavingAnUnsaveableModelAtomicallyLeavesTheExistingFileByteIdentical()
    {
        var (ml, view, model) = Fit(Options(32, 0.875), rawBytes: false);
        var expected = ml.Data.CreateEnumerable<Prediction>(model.Transform(view), false).ToList();
        string folder = Directory.CreateDirectory(Path.Combine(_folder, "atomic")).FullName;
        string path = Path.Combine(folder, "model.zip");
        ml.Model.SaveAtomically(model, view.Schema, path);
        byte[] good = File.ReadAllBytes(path);

        // A custom mapping without a contract name cannot be saved: ML.NET throws from inside Save.
        var unsaveable = new TransformerChain<ITransformer>(model, ml.Transforms
            .CustomMapping<PathOnly, PathLength>((row, length) => length.Length = row.ImagePath.Length, contractName: null)
            .Fit(model.Transform(view)));
        Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.SaveAtomically(unsaveable, view.Schema, path));
        CollectionAssert.AreEqual(good, File.ReadAllBytes(path), "the existing model.zip changed");
        CollectionAssert.AreEqual(new[] { path }, Directory.GetFiles(folder), "a temporary file was left behind");

        // Control: ML.NET's own Save(path) of the same model destroys the file, which is what SaveAtomically prevents.
        string plain = Path.Combine(folder, "plain.zip");
        File.WriteAllBytes(plain, good);
        Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.Save(unsaveable, view.Schema, plain));
        Assert.AreNotEqual(good.Length, new FileInfo(plain).Length, "ML.NET's Save no longer truncates first; revisit SaveAtomically's doc");

        var loaded = new MLContext().Model.Load(path, out _);
        AssertSame(expected, ml.Data.CreateEnumerable<Prediction>(loaded.Transform(view), false).ToList(), "after a failed atomic save");
    }

    [TestMethod]
    public void InProcessEvaluationPixelsAreMLNetResizeThenTheCentredWindow()
    {
        // Independent reference: ML.NET's own ResizeImages + ExtractPixels, windowed by hand at ceil((R − S) / 2).
        var ml = new MLContext(seed: 1);
        var crop = new EvaluationCrop(64, 0.875);
        Assert.AreEqual(73, crop.ResizeShorterSide);
        Assert.AreEqual(5, crop.WindowOffset, "an odd margin of 9 puts the window at 5 (ceil), as the ONNX graph slices it");
        var view = ml.Transforms.LoadImages("Image", null, nameof(ImageRow.ImagePath)).Fit(ml.Data.LoadFromEnumerable(_rows)).Transform(ml.Data.LoadFromEnumerable(_rows));
        var reference = ml.Transforms.ResizeImages("R", 73, 73, "Image", Microsoft.ML.Transforms.Image.ImageResizingEstimator.ResizingKind.IsoCrop)
            .Append(ml.Transforms.ExtractPixels("P", "R")).Fit(view).Transform(view).GetColumn<float[]>("P").ToArray();
        for (int i = 0; i < _rows.Count; i++)
        {
            using var image = MLImage.CreateFromFile(_rows[i].ImagePath);
            var ours = crop.Apply(image);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 64; y++)
                    for (int x = 0; x < 64; x++)
                        Assert.AreEqual(reference[i][(c * 73 + y + 5) * 73 + x + 5], ours.Pixels[(y * 64 + x) * 3 + c], $"image {i} ({_rows[i].ImagePath}) c{c} y{y} x{x}");
        }
    }

    private static Prediction Copy(Prediction p) => new() { Score = p.Score.ToArray(), PredictedClass = p.PredictedClass };

    private static void AssertSame(IReadOnlyList<Prediction> expected, IReadOnlyList<Prediction> actual, string what)
    {
        Assert.HasCount(expected.Count, actual, what);
        double worst = 0;
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.AreEqual(expected[i].PredictedClass, actual[i].PredictedClass, $"{what}: label of row {i} ({_rows[i].ImagePath})");
            for (int c = 0; c < expected[i].Score.Length; c++) worst = Math.Max(worst, Math.Abs(expected[i].Score[c] - actual[i].Score[c]));
        }
        Assert.IsLessThan(1e-4, worst, $"{what}: largest probability difference");
    }
}
