using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Tests.Training;
using Microsoft.ML.RegNet.Training;
using SkiaSharp;

namespace Microsoft.ML.RegNet.Tests.Data;

/// <summary>LoadImages and LoadRawImageBytes columns follow one policy: same pixels, same handling of unreadable files.</summary>
[TestClass]
public sealed class ImageSourcePolicyTests
{
    private sealed class FileRow
    {
        public string Path { get; set; } = "";
        public string Name { get; set; } = "";
    }

    private static IDataView Files(MLContext ml, string dir, string[] files, bool rawBytes)
    {
        var view = ml.Data.LoadFromEnumerable(files.Select(f => new FileRow { Path = f, Name = "x" }));
        IEstimator<ITransformer> load = rawBytes ? ml.Transforms.LoadRawImageBytes("Image", dir, "Path") : ml.Transforms.LoadImages("Image", dir, "Path");
        return ml.Transforms.Conversion.MapValueToKey("Label", "Name").Append(load).Fit(view).Transform(view);
    }

    private static ImageBatchPipelineOptions Options(BadImagePolicy policy) => new()
    {
        BatchSize = 3, ImageSize = 8, Seed = 1, WorkerThreads = 2, Shuffle = false, BadImagePolicy = policy,
        Augmentation = AugmentationOptions.Evaluation(1.0),
    };

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void UnreadableFilesAreSkippedAndNamedOrFailNamingTheRowAndFile(bool rawBytes)
    {
        var ml = new MLContext(1);
        string dir = Directory.CreateTempSubdirectory("regnet-bad-").FullName;
        try
        {
            foreach (var f in new[] { "a.png", "b.png", "d.png", "e.png" })
                File.WriteAllBytes(Path.Combine(dir, f), TestImages.Encode(TestImages.Pattern(12, 10)));
            File.WriteAllText(Path.Combine(dir, "text.png"), "not an image");
            var data = Files(ml, dir, new[] { "a.png", "b.png", "missing.png", "d.png", "text.png", "e.png" }, rawBytes);

            var skipping = new ImageBatchPipeline(Options(BadImagePolicy.Skip));
            var rows = new List<long>();
            foreach (var batch in skipping.Read(data, 0))
                using (batch) rows.AddRange(batch.RowIndices);
            CollectionAssert.AreEqual(new long[] { 0, 1, 3, 5 }, rows);
            Assert.AreEqual(2, skipping.BadImagesSkipped);
            CollectionAssert.AreEqual(new long[] { 2, 4 }, skipping.FirstBadRows.Select(b => b.RowIndex).ToArray());
            StringAssert.Contains(skipping.DescribeBadRows(), "row 2");
            // Both loaders name a missing file; for an undecodable one only the library decoder's reason is shown (LoadImages' does not name it).
            StringAssert.Contains(skipping.DescribeBadRows(), "missing.png");

            var e = Assert.ThrowsExactly<InvalidDataException>(() => new ImageBatchPipeline(Options(BadImagePolicy.FailOnBadImage)).Read(data, 0).ToList());
            StringAssert.Contains(e.Message, "row 2");
            StringAssert.Contains(e.Message, "BadImagePolicy.Skip");
            StringAssert.Contains(e.Message, "missing.png");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [TestMethod]
    public void TrainerSkipsAMissingRawBytesFileAndLogsItsRow()
    {
        var ml = new MLContext(1);
        using var data = new TinyImageData(perClass: 4);
        File.Delete(data.Rows[5].ImagePath);
        var raw = ml.Data.LoadFromEnumerable(data.Rows);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        var bytes = ml.Transforms.LoadRawImageBytes("Image", null, nameof(TinyImageData.Row.ImagePath)).Fit(keyed).Transform(keyed);
        RegNetTrainer.Options Options(BadImagePolicy policy) => new()
        {
            Spec = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8), ImageSize = 32, BatchSize = 4, MaxEpochs = 1, Seed = 1,
            WorkerThreads = 1, BadImagePolicy = policy,
        };

        var e = Assert.Throws<Exception>(() => ml.MulticlassClassification.Trainers.RegNet(Options(BadImagePolicy.FailOnBadImage)).Fit(bytes));
        StringAssert.Contains(e.Message, "row 5");
        StringAssert.Contains(e.Message, Path.GetFileName(data.Rows[5].ImagePath));

        var logs = new List<string>();
        ml.Log += (_, args) => { lock (logs) logs.Add(args.Message); };
        using var model = ml.MulticlassClassification.Trainers.RegNet(Options(BadImagePolicy.Skip)).Fit(bytes);
        string warning;
        lock (logs) warning = logs.Single(l => l.Contains("could not be decoded"));
        StringAssert.Contains(warning, "1 training images");
        StringAssert.Contains(warning, "row 5");
        StringAssert.Contains(warning, Path.GetFileName(data.Rows[5].ImagePath));
    }

    // A PNG whose alpha runs over 0…255 across its pixels, with colour under the transparent ones.
    private static byte[] TransparentPng()
    {
        using var bitmap = new SKBitmap(new SKImageInfo(16, 16, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++)
                bitmap.SetPixel(x, y, new SKColor((byte)(x * 16 + 7), (byte)(255 - y * 13), (byte)(x * y), (byte)(y * 16 + x)));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    [TestMethod]
    public void TransparentPixelsAreComposedOverBlackByBothLoaders()
    {
        var ml = new MLContext(1);
        string dir = Directory.CreateTempSubdirectory("regnet-alpha-").FullName;
        try
        {
            byte[] png = TransparentPng();
            File.WriteAllBytes(Path.Combine(dir, "t.png"), png);
            var images = Files(ml, dir, new[] { "t.png" }, rawBytes: false);
            using var cursor = images.GetRowCursor(images.Schema);
            var getter = cursor.GetGetter<MLImage>(images.Schema["Image"]);
            Assert.IsTrue(cursor.MoveNext());
            MLImage image = null!;
            getter(ref image);
            byte[] viaLoadImages = ImageDecoder.FromMLImage(image).Pixels.ToArray();
            byte[] viaBytes = ImageDecoder.Decode(png).Pixels.ToArray();
            CollectionAssert.AreEqual(viaLoadImages, viaBytes, "LoadImages and LoadRawImageBytes + ImageDecoder");

            // Composed over black: channel × alpha / 255, rounded.
            using var bitmap = SKBitmap.Decode(SKCodec.Create(new MemoryStream(png)), new SKImageInfo(16, 16, SKColorType.Rgba8888, SKAlphaType.Unpremul));
            var unpremul = bitmap.Pixels;
            var expected = unpremul.SelectMany(c => new[] { c.Red, c.Green, c.Blue }.Select(v => (byte)Math.Round(v * c.Alpha / 255.0, MidpointRounding.AwayFromZero))).ToArray();
            int maxDiff = expected.Zip(viaBytes, (a, b) => Math.Abs(a - b)).Max();
            Assert.IsLessThanOrEqualTo(1, maxDiff, "over black");
            // Negative control: dropping alpha without composing (the old decoder, PIL's convert("RGB")) differs.
            var dropped = unpremul.SelectMany(c => new[] { c.Red, c.Green, c.Blue }).ToArray();
            Assert.IsGreaterThan(100, dropped.Zip(viaBytes, (a, b) => Math.Abs(a - b)).Max());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
