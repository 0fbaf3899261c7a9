using System.Reflection;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.MLNet;
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

    private static List<float[]> TrainPixels(int? contextSeed, int? seed = null)
    {
        var ml = new MLContext(contextSeed);
        var files = Files(ml);
        var pipeline = ml.Transforms.LoadImages("Image", _dir, "Path")
            .Append(ml.Transforms.RandomResizedCrop("Crop", "Image", imageSize: 24, areaFactor: 0.25, seed: seed))
            .Append(ml.Transforms.RandomHorizontalFlip("Crop", seed: seed))
            .Append(ml.Transforms.RandomPcaLighting("Crop", seed: seed))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Crop"));
        var output = pipeline.Fit(files).Transform(files);
        return output.GetColumn<VBuffer<float>>("Pixels").Select(v => v.DenseValues().ToArray()).ToList();
    }

    [TestMethod]
    public void TrainingTransformsComposeWithLoadImagesAndExtractPixelsAndFollowTheContextSeed()
    {
        var a = TrainPixels(7);
        Assert.HasCount(4, a);
        foreach (var p in a) Assert.HasCount(3 * 24 * 24, p);
        var b = TrainPixels(7);
        for (int i = 0; i < 4; i++) CollectionAssert.AreEqual(a[i], b[i]);
        var c = TrainPixels(8);
        Assert.IsFalse(a[0].SequenceEqual(c[0]));
        var explicitSeed = TrainPixels(8, seed: 7);
        for (int i = 0; i < 4; i++) CollectionAssert.AreEqual(a[i], explicitSeed[i]);
        Assert.AreEqual(42, ImageAugmentationCatalog.GetContextSeed(new MLContext(42).Transforms));
        Assert.IsNull(ImageAugmentationCatalog.GetContextSeed(new MLContext().Transforms));
    }

    [TestMethod]
    public void EvaluationCropTransformEqualsTheCoreOperationAndAdvertisesItsSize()
    {
        var ml = new MLContext(1);
        var files = Files(ml);
        var estimator = ml.Transforms.LoadImages("Image", _dir, "Path")
            .Append(ml.Transforms.EvaluationCrop("Eval", "Image", imageSize: 20));
        var create = typeof(SchemaShape).GetMethod("Create", BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)!;
        var shape = estimator.GetOutputSchema((SchemaShape)create.Invoke(null, new object[] { files.Schema })!);
        Assert.IsTrue(shape.Any(c => c.Name == "Eval" && c.ItemType is Microsoft.ML.Transforms.Image.ImageDataViewType { Height: 20, Width: 20 }));
        var output = estimator.Fit(files).Transform(files);
        Assert.AreEqual(new Microsoft.ML.Transforms.Image.ImageDataViewType(20, 20), output.Schema["Eval"].Type);
        var images = output.GetColumn<MLImage>("Eval").ToList();
        for (int i = 0; i < 4; i++)
        {
            var expected = new EvaluationCrop(20).Apply(ImageDecoder.DecodeFile(Path.Combine(_dir, $"{i}.png")));
            var actual = images[i];
            CollectionAssert.AreEqual(expected.Pixels.ToArray(), ImageDecoder.FromMLImage(actual).Pixels.ToArray());
        }
        // Scoring one row through a prediction engine (row-to-row mapper) gives the same image.
        var engine = ml.Model.CreatePredictionEngine<FileRow, EvalRow>(estimator.Fit(files));
        using var single = engine.Predict(new FileRow { Path = "2.png" }).Eval;
        CollectionAssert.AreEqual(ImageDecoder.FromMLImage(images[2]).Pixels.ToArray(), ImageDecoder.FromMLImage(single).Pixels.ToArray());
    }

    [TestMethod]
    public void WrongColumnsAndSettingsGiveClearMessages()
    {
        var ml = new MLContext(1);
        var files = Files(ml);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.RandomHorizontalFlip("Path").Fit(files));
        StringAssert.Contains(e.Message, "'Path'");
        var m = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.EvaluationCrop("X", "Missing").Fit(files));
        StringAssert.Contains(m.Message, "'Missing'");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.RandomResizedCrop("X", areaFactor: 0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.RandomResizedCrop("X", imageSize: 0));
        var loaded = ml.Transforms.LoadImages("Image", _dir, "Path").Fit(files).Transform(files);
        var t = ml.Transforms.RandomHorizontalFlip("Image").Fit(loaded);
        Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.Save(t, loaded.Schema, new MemoryStream()));
    }
}
