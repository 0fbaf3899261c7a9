using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Tests.Data;

[TestClass]
public sealed class ImageAugmentationCatalogTests
{
    private sealed class FileRow
    {
        public string Path { get; set; } = "";
    }

    private sealed class EvalRow
    {
        [Microsoft.ML.Transforms.Image.ImageType(20, 20)]
        public MLImage Eval { get; set; } = null!;
    }

    private static string _dir = "";

    [ClassInitialize]
    public static void Setup(TestContext _)
    {
        _dir = Path.Combine(Path.GetTempPath(), "regnet-mlnet-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        for (int i = 0; i < 4; i++)
            File.WriteAllBytes(Path.Combine(_dir, $"{i}.png"), TestImages.Encode(TestImages.Pattern(40 + 9 * i, 31 + 4 * i, i)));
    }

    [ClassCleanup]
    public static void Cleanup() => Directory.Delete(_dir, true);

    private static IDataView Files(MLContext ml) =>
        ml.Data.LoadFromEnumerable(Enumerable.Range(0, 4).Select(i => new FileRow { Path = $"{i}.png" }));

    private static IDataView Augmented(MLContext ml, int? seed = null)
    {
        var files = Files(ml);
        var images = ml.Transforms.LoadImages("Image", _dir, "Path").Fit(files).Transform(files);
        var crop = ml.Data.RandomResizedCrop(images, "Crop", "Image", imageSize: 24, areaFactor: 0.25, seed: seed);
        return ml.Data.RandomPcaLighting(ml.Data.RandomHorizontalFlip(crop, "Crop", seed: seed), "Crop", seed: seed);
    }

    private static List<float[]> Pixels(MLContext ml, IDataView data) =>
        ml.Transforms.ExtractPixels("Pixels", "Crop").Fit(data).Transform(data)
            .GetColumn<VBuffer<float>>("Pixels").Select(v => v.DenseValues().ToArray()).ToList();

    [TestMethod]
    public void RandomAugmentationIsDataThatFollowsTheContextSeedAndChangesEveryPass()
    {
        var ml7 = new MLContext(7);
        var view = Augmented(ml7);
        var first = Pixels(ml7, view);
        Assert.HasCount(4, first);
        foreach (var p in first) Assert.HasCount(3 * 24 * 24, p);
        Assert.IsFalse(first[0].SequenceEqual(Pixels(ml7, view)[0]), "a second pass (epoch) draws new crops");

        var again = new MLContext(7);
        var repeat = Pixels(again, Augmented(again));
        for (int i = 0; i < 4; i++) CollectionAssert.AreEqual(first[i], repeat[i], "same seed, same first pass");
        var other = new MLContext(8);
        Assert.IsFalse(first[0].SequenceEqual(Pixels(other, Augmented(other))[0]), "another context seed, other crops");
        var explicitSeed = new MLContext(8);
        var withSeed = Pixels(explicitSeed, Augmented(explicitSeed, seed: 7));
        for (int i = 0; i < 4; i++) CollectionAssert.AreEqual(first[i], withSeed[i], "an explicit seed wins over the context's");
    }

    [TestMethod]
    public void TheRandomOperationsAreNotEstimatorsSoNoFittedModelCanContainThem()
    {
        // Training-only by construction: the catalog offers them on mlContext.Data (data in, data out) and nowhere else.
        var methods = typeof(ImageAugmentationCatalog).GetMethods().Where(m => m.Name.StartsWith("Random", StringComparison.Ordinal)).ToList();
        Assert.HasCount(3, methods);
        foreach (var m in methods)
        {
            Assert.AreEqual(typeof(DataOperationsCatalog), m.GetParameters()[0].ParameterType, m.Name);
            Assert.AreEqual(typeof(IDataView), m.ReturnType, m.Name);
        }
    }

    [TestMethod]
    public void EvaluationCropTransformEqualsTheEvaluationTransformAndSavesAndLoads()
    {
        var ml = new MLContext(1);
        var files = Files(ml);
        var estimator = ml.Transforms.LoadImages("Image", _dir, "Path")
            .Append(ml.Transforms.EvaluationCrop("Eval", "Image", imageSize: 20));
        var model = estimator.Fit(files);
        var output = model.Transform(files);
        Assert.AreEqual(new Microsoft.ML.Transforms.Image.ImageDataViewType(20, 20), output.Schema["Eval"].Type);
        Assert.IsFalse(output.Schema.Any(c => c.Name.StartsWith("RegNet", StringComparison.Ordinal)), "helper columns are dropped");
        var images = output.GetColumn<MLImage>("Eval").Select(i => ImageDecoder.FromMLImage(i).Pixels.ToArray()).ToList();
        var crop = new EvaluationCrop(20);
        for (int i = 0; i < 4; i++)
        {
            using var source = MLImage.CreateFromFile(Path.Combine(_dir, $"{i}.png"));
            CollectionAssert.AreEqual(crop.Apply(source).Pixels.ToArray(), images[i], $"image {i}");
        }

        string path = Path.Combine(_dir, "eval-crop.zip");
        ml.Model.Save(model, files.Schema, path);
        var loaded = new MLContext(2).Model.Load(path, out _);
        var reloaded = loaded.Transform(files).GetColumn<MLImage>("Eval").Select(i => ImageDecoder.FromMLImage(i).Pixels.ToArray()).ToList();
        for (int i = 0; i < 4; i++) CollectionAssert.AreEqual(images[i], reloaded[i], $"image {i} after Save/Load");

        // One row through a prediction engine (row-to-row) gives the same image.
        var engine = ml.Model.CreatePredictionEngine<FileRow, EvalRow>(loaded);
        using var single = engine.Predict(new FileRow { Path = "2.png" }).Eval;
        CollectionAssert.AreEqual(images[2], ImageDecoder.FromMLImage(single).Pixels.ToArray());
    }

    [TestMethod]
    public void WrongColumnsAndSettingsGiveClearMessages()
    {
        var ml = new MLContext(1);
        var files = Files(ml);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Data.RandomHorizontalFlip(files, "Path"));
        StringAssert.Contains(e.Message, "'Path'");
        var m = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Data.RandomHorizontalFlip(files, "X", "Missing"));
        StringAssert.Contains(m.Message, "'Missing'");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Data.RandomResizedCrop(files, "X", areaFactor: 0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Data.RandomResizedCrop(files, "X", imageSize: 0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.EvaluationCrop("X", imageSize: 0));
    }
}
