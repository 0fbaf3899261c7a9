using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Data.Transforms;
using SkiaSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Data;

[TestClass]
public sealed class ImageBatchPipelineTests
{
    private sealed class Row
    {
        [VectorType]
        public byte[] Image { get; set; } = [];

        public float LabelValue { get; set; }
    }

    // Labels become keys through MapValueToKey in order of occurrence (value v → key v+1); NaN → key 0 (missing).
    private static IDataView MakeData(MLContext ml, int count, Func<int, byte[]>? bytes = null, Func<int, float>? label = null)
    {
        var rows = Enumerable.Range(0, count).Select(i => new Row
        {
            Image = bytes?.Invoke(i) ?? TestImages.Encode(TestImages.Pattern(20 + 7 * (i % 5), 18 + 5 * (i % 3), i),
                i % 2 == 0 ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg),
            LabelValue = label?.Invoke(i) ?? i % 9,
        }).ToList();
        var raw = ml.Data.LoadFromEnumerable(rows);
        return ml.Transforms.Conversion.MapValueToKey("Label", "LabelValue").Fit(raw).Transform(raw);
    }

    private static ImageBatchPipelineOptions Options(int workers) => new()
    {
        BatchSize = 4,
        ImageSize = 16,
        Seed = 123,
        WorkerThreads = workers,
        PrefetchBatches = 2,
        Shuffle = true,
        ShufflePoolSize = 5,
    };

    private static List<(float[] Images, long[] Labels, long[] Rows, int Index)> Collect(ImageBatchPipeline p, IDataView data, int epoch, int skip = 0,
        int? augmentationEpoch = null) => Collect(p.Read(data, epoch, skip, augmentationEpoch: augmentationEpoch));

    private static List<(float[] Images, long[] Labels, long[] Rows, int Index)> Collect(IEnumerable<ImageBatch> batches)
    {
        var result = new List<(float[], long[], long[], int)>();
        foreach (var batch in batches)
            using (batch)
            {
                Assert.AreEqual(ScalarType.Float32, batch.Images.dtype);
                Assert.AreEqual(ScalarType.Int64, batch.Labels!.dtype);
                CollectionAssert.AreEqual(new long[] { batch.Count, 3, 16, 16 }, batch.Images.shape);
                result.Add((batch.Images.data<float>().ToArray(), batch.Labels.data<long>().ToArray(), batch.RowIndices, batch.Index));
            }
        return result;
    }

    private static void AssertSame(List<(float[] Images, long[] Labels, long[] Rows, int Index)> a, List<(float[] Images, long[] Labels, long[] Rows, int Index)> b)
    {
        Assert.HasCount(a.Count, b);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.AreEqual(a[i].Index, b[i].Index);
            CollectionAssert.AreEqual(a[i].Rows, b[i].Rows);
            CollectionAssert.AreEqual(a[i].Labels, b[i].Labels);
            CollectionAssert.AreEqual(a[i].Images, b[i].Images);
        }
    }

    [TestMethod]
    public void SameSeedGivesIdenticalBatchesWithOneAndTwoWorkers()
    {
        var ml = new MLContext(1);
        var data = MakeData(ml, 14);
        var one = Collect(new ImageBatchPipeline(Options(1)), data, epoch: 3);
        var two = Collect(new ImageBatchPipeline(Options(2)), data, epoch: 3);
        AssertSame(one, two);
        Assert.HasCount(4, one); // 14 rows, batch 4, last partial kept
        Assert.HasCount(2, one[3].Rows);
        // Every row once, shuffled, labels = key − 1.
        var rows = one.SelectMany(b => b.Rows).ToArray();
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 14).Select(i => (long)i).ToArray(), rows);
        CollectionAssert.AreNotEqual(Enumerable.Range(0, 14).Select(i => (long)i).ToArray(), rows);
        foreach (var b in one)
            for (int i = 0; i < b.Rows.Length; i++) Assert.AreEqual(b.Rows[i] % 9, b.Labels[i]);
        // Another epoch draws other crops and another order.
        var other = Collect(new ImageBatchPipeline(Options(2)), data, epoch: 4);
        Assert.IsFalse(other[0].Images.SequenceEqual(one[0].Images));
    }

    [TestMethod]
    public void AnAugmentationEpochKeepsTheEpochsOrderAndAugmentsAsThatEpoch()
    {
        var ml = new MLContext(1);
        var data = MakeData(ml, 14);
        var own = Collect(new ImageBatchPipeline(Options(2)), data, epoch: 3);
        var asEpoch1 = Collect(new ImageBatchPipeline(Options(2)), data, epoch: 3, augmentationEpoch: 1);
        var epoch1 = Collect(new ImageBatchPipeline(Options(2)), data, epoch: 1);
        CollectionAssert.AreEqual(own.SelectMany(b => b.Rows).ToArray(), asEpoch1.SelectMany(b => b.Rows).ToArray());
        CollectionAssert.AreNotEqual(epoch1.SelectMany(b => b.Rows).ToArray(), asEpoch1.SelectMany(b => b.Rows).ToArray());
        var expected = PixelsByRow(epoch1);
        var ownPixels = PixelsByRow(own);
        foreach (var (row, pixels) in PixelsByRow(asEpoch1))
            CollectionAssert.AreEqual(expected[row], pixels, $"row {row}");
        Assert.IsTrue(ownPixels.Any(kv => !kv.Value.SequenceEqual(expected[kv.Key])), "epochs 1 and 3 augment alike");
    }

    private static Dictionary<long, float[]> PixelsByRow(List<(float[] Images, long[] Labels, long[] Rows, int Index)> batches)
    {
        int length = 3 * 16 * 16;
        return batches.SelectMany(b => b.Rows.Select((row, i) => (row, b.Images.AsSpan(i * length, length).ToArray())))
            .ToDictionary(p => p.row, p => p.Item2);
    }

    [TestMethod]
    public void SkippingBatchesResumesExactlyAndDropLastDropsThePartialBatch()
    {
        var ml = new MLContext(1);
        var data = MakeData(ml, 14);
        var full = Collect(new ImageBatchPipeline(Options(2)), data, epoch: 1);
        var resumed = Collect(new ImageBatchPipeline(Options(2)), data, epoch: 1, skip: 2);
        AssertSame(full.Skip(2).ToList(), resumed);
        var noShuffle = Options(2) with { Shuffle = false, DropLast = true };
        var all = Collect(new ImageBatchPipeline(noShuffle), data, epoch: 0);
        Assert.HasCount(3, all);
        CollectionAssert.AreEqual(new long[] { 4, 5, 6, 7 }, all[1].Rows);
        AssertSame(all.Skip(1).ToList(), Collect(new ImageBatchPipeline(noShuffle), data, epoch: 0, skip: 1));
    }

    private sealed class CountedIn
    {
        [VectorType]
        public byte[] Image { get; set; } = [];
    }

    private sealed class CountedOut
    {
        [VectorType]
        public byte[] Counted { get; set; } = [];
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void ResumingReadsAndDecodesOnlyTheRowsOfTheRemainingBatches(bool shuffle)
    {
        var ml = new MLContext(1);
        long reads = 0;
        var source = MakeData(ml, 14);
        // Counts every time the image column's getter runs, i.e. every file a LoadRawImageBytes column would read.
        var data = ml.Transforms.CustomMapping<CountedIn, CountedOut>((i, o) =>
        {
            Interlocked.Increment(ref reads);
            o.Counted = i.Image;
        }, contractName: null).Fit(source).Transform(source);
        var options = Options(2) with { ImageColumnName = "Counted", Shuffle = shuffle };

        var full = new ImageBatchPipeline(options);
        var all = Collect(full, data, epoch: 2);
        Assert.AreEqual(14, Interlocked.Exchange(ref reads, 0));
        Assert.AreEqual(14, full.ImagesRead);

        var resumed = new ImageBatchPipeline(options);
        AssertSame(all.Skip(2).ToList(), Collect(resumed, data, epoch: 2, skip: 2));
        Assert.AreEqual(6, Interlocked.Read(ref reads), "rows read: only those of batches 2 and 3");
        Assert.AreEqual(6, resumed.ImagesRead, "images decoded");
        // Skipping every batch reads nothing.
        Interlocked.Exchange(ref reads, 0);
        Assert.IsEmpty(Collect(new ImageBatchPipeline(options), data, epoch: 2, skip: 4));
        Assert.AreEqual(0, Interlocked.Read(ref reads));
    }

    [TestMethod]
    public void ShuffleBufferAndBatcherArePureFunctionsOfTheirInputs()
    {
        AugmentationRandom Random() => AugmentationRandom.ForEpoch(3, 1, purpose: 1);
        var items = Enumerable.Range(0, 23).ToArray();
        var order = ShuffleBuffer.Shuffle(items, 5, Random()).ToArray();
        CollectionAssert.AreEquivalent(items, order);
        CollectionAssert.AreNotEqual(items, order);
        // The order depends on positions only: other items in the same places come out in the same places.
        CollectionAssert.AreEqual(order.Select(i => "x" + i).ToArray(), ShuffleBuffer.Shuffle(items.Select(i => "x" + i), 5, Random()).ToArray());
        var batches = Batcher.Batches(order, 4, skipBatches: 2, dropLast: false).ToList();
        CollectionAssert.AreEqual(new[] { 2, 3, 4, 5 }, batches.Select(b => b.Index).ToArray());
        CollectionAssert.AreEqual(order.Skip(8).Take(4).ToArray(), batches[0].Items);
        Assert.HasCount(3, batches[^1].Items);
        Assert.HasCount(3, Batcher.Batches(order, 4, skipBatches: 2, dropLast: true).ToList());
    }

    [TestMethod]
    public void EvaluationBatchesEqualTheEvaluationCropNormalised()
    {
        var ml = new MLContext(1);
        var data = MakeData(ml, 3);
        var options = ImageBatchPipelineOptions.ForEvaluation(PreprocessingSpec.ImageNet with { ImageSize = 16 }, batchSize: 4);
        Assert.IsFalse(options.Augmentation.Train);
        Assert.IsTrue(ImageBatchPipelineOptions.ForTraining(PreprocessingSpec.Keras, 0.25).Augmentation is { Train: true, AreaFactor: 0.25 });
        var batch = Collect(new ImageBatchPipeline(options), data, epoch: 0).Single();
        var decoded = ImageDecoder.Decode(TestImages.Encode(TestImages.Pattern(27, 23, 1), SKEncodedImageFormat.Jpeg));
        var expected = new float[3 * 16 * 16];
        PixelNormalizer.WriteChw(new EvaluationCrop(16).Apply(decoded), ImageNormalization.ImageNet, expected);
        CollectionAssert.AreEqual(expected, batch.Images.Skip(expected.Length).Take(expected.Length).ToArray());
    }

    [TestMethod]
    public void BadImagesFailWithTheRowIndexOrAreSkippedAndCounted()
    {
        var ml = new MLContext(1);
        var data = MakeData(ml, 9, bytes: i => i switch
        {
            3 => new byte[] { 0xFF, 0xD8, 0x00, 0x13, 0x37 },
            5 => [],
            _ => TestImages.Encode(TestImages.Pattern(12, 9, i)),
        }, label: i => i == 7 ? float.NaN : 0f);
        var options = Options(2) with { Shuffle = false };
        var e = Assert.ThrowsExactly<InvalidDataException>(() => Collect(new ImageBatchPipeline(options), data, 0));
        StringAssert.Contains(e.Message, "row 3");

        var skipping = new ImageBatchPipeline(options with { BadImagePolicy = BadImagePolicy.Skip });
        var rows = new List<long>();
        var bad = new List<BadRow>();
        foreach (var batch in skipping.Read(data, 0))
            using (batch)
            {
                rows.AddRange(batch.RowIndices);
                bad.AddRange(batch.BadRows);
                Assert.AreEqual(batch.Count, (int)batch.Images.shape[0]);
            }
        CollectionAssert.AreEqual(new long[] { 0, 1, 2, 4, 6, 8 }, rows, string.Join(",", rows) + " bad " + string.Join(" | ", bad));
        CollectionAssert.AreEqual(new long[] { 3, 5, 7 }, bad.Select(b => b.RowIndex).ToArray());
        StringAssert.Contains(bad[1].Reason, "empty");
        StringAssert.Contains(bad[2].Reason, "missing label");
        Assert.AreEqual(3, skipping.BadImagesSkipped);
    }

    [TestMethod]
    public void ReadsMLImageColumnsFromLoadImagesIncludingGrayAndTinyImages()
    {
        var ml = new MLContext(1);
        string dir = Path.Combine(Path.GetTempPath(), "regnet-aug-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllBytes(Path.Combine(dir, "a.png"), TestImages.Encode(TestImages.Pattern(40, 30)));
            File.Copy(TestImages.Fixture("decode_gray.png"), Path.Combine(dir, "gray.png"));
            File.WriteAllBytes(Path.Combine(dir, "tiny.png"), TestImages.Encode(TestImages.Pattern(3, 2)));
            File.WriteAllText(Path.Combine(dir, "text.png"), "not an image");
            var files = ml.Data.LoadFromEnumerable(new[] { "a.png", "gray.png", "tiny.png", "missing.png", "text.png" }
                .Select(f => new FileRow { Path = f, Name = "x" }));
            var data = ml.Transforms.Conversion.MapValueToKey("Label", "Name")
                .Append(ml.Transforms.LoadImages("Image", dir, "Path")).Fit(files).Transform(files);
            var options = Options(2) with { Shuffle = false, BadImagePolicy = BadImagePolicy.Skip };
            var a = Collect(new ImageBatchPipeline(options), data, 0);
            var b = Collect(new ImageBatchPipeline(options with { WorkerThreads = 1 }), data, 0);
            AssertSame(a, b);
            CollectionAssert.AreEqual(new long[] { 0, 1, 2 }, a.SelectMany(x => x.Rows).ToArray());
            // The unreadable files fail with their row index under the default policy.
            var e = Assert.ThrowsExactly<InvalidDataException>(() => Collect(new ImageBatchPipeline(options with { BadImagePolicy = BadImagePolicy.FailOnBadImage }), data, 0));
            StringAssert.Contains(e.Message, "row 3");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private sealed class FileRow
    {
        public string Path { get; set; } = "";
        public string Name { get; set; } = "";
    }

    [TestMethod]
    public void BatchesOutliveTheConsumersDisposeScopeAndStoppingEarlyIsClean()
    {
        var ml = new MLContext(1);
        var data = MakeData(ml, 30);
        var pipeline = new ImageBatchPipeline(Options(2) with { PrefetchBatches = 1 });
        ImageBatch kept;
        using (NewDisposeScope())
        {
            kept = pipeline.Read(data, 0).First(); // breaks out after one batch: workers must stop
        }
        using (kept)
        {
            Assert.IsFalse(kept.Images.IsInvalid);
            Assert.AreEqual(4, kept.Images.shape[0]);
            Assert.IsTrue(float.IsFinite(kept.Images.sum().item<float>()));
        }
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() => pipeline.Read(data, 0, cancellationToken: cts.Token).ToList());
    }

    [TestMethod]
    public void AStartedEpochDecodesBeforeItIsReadGivesReadsBatchesAndStopsUnread()
    {
        var ml = new MLContext(1);
        var data = MakeData(ml, 14);
        var expected = Collect(new ImageBatchPipeline(Options(2)), data, epoch: 1);

        var pipeline = new ImageBatchPipeline(Options(2));
        using var started = pipeline.Start(data, 1);
        // Nothing enumerated yet: the workers decode on their own, up to the prefetch bound.
        Waiting.Until(() => pipeline.ImagesRead > 0);
        Assert.IsGreaterThan(0L, pipeline.ImagesRead, "a started epoch decodes before its first MoveNext");
        AssertSame(expected, Collect(started));
        Assert.Throws<InvalidOperationException>(() => started.GetEnumerator());

        // Disposed unread: the reader and workers stop, well before the 300 rows are decoded.
        var big = MakeData(ml, 300);
        var other = new ImageBatchPipeline(Options(2) with { PrefetchBatches = 1 });
        other.Start(big, 0).Dispose();
        long read = other.ImagesRead;
        Thread.Sleep(100);
        Assert.AreEqual(read, other.ImagesRead, "no decoding after Dispose returned");
        Assert.IsLessThan(300L, read);
    }

    [TestMethod]
    public void AStartedEpochReadsAheadAsFarAsAskedAndKeepsOnlyTheUsualBuffers()
    {
        var ml = new MLContext(1);
        var data = MakeData(ml, 40); // ten batches of 4
        var expected = Collect(new ImageBatchPipeline(Options(1)), data, epoch: 0);
        var usual = new ImageBatchPipeline(Options(1));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => usual.Start(data, 0, readAhead: 0));
        using (usual.Start(data, 0))
        {
            Waiting.Until(() => false, () => usual.ImagesRead, stillMilliseconds: 300);
            Assert.IsLessThan(40L, usual.ImagesRead, "the usual depth (2 batches queued, 1 worker) stops before the epoch's end");
        }

        var ahead = new ImageBatchPipeline(Options(1));
        using var started = ahead.Start(data, 0, readAhead: 10);
        Waiting.Until(() => ahead.ImagesRead == 40, () => ahead.ImagesRead, stillMilliseconds: 300);
        Assert.AreEqual(40L, ahead.ImagesRead, "all ten batches decoded before the first is asked for");
        AssertSame(expected, Collect(started));
        Assert.IsLessThanOrEqualTo(2 + 1 + 1, ahead.PooledBuffers, "buffers beyond the usual depth are not kept");
    }

    [TestMethod]
    public void InvalidOptionsAndColumnsGiveClearMessages()
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ImageBatchPipeline(new ImageBatchPipelineOptions { BatchSize = 0 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ImageBatchPipeline(new ImageBatchPipelineOptions { ImageSize = -1 }));
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ImageBatchPipeline(new ImageBatchPipelineOptions
        {
            Augmentation = AugmentationOptions.Training(areaFactor: 1.5),
        }));
        StringAssert.Contains(e.Message, "AreaFactor");
        var ml = new MLContext(1);
        var data = MakeData(ml, 2);
        var p = new ImageBatchPipeline(new ImageBatchPipelineOptions { ImageColumnName = "Label" });
        var c = Assert.ThrowsExactly<ArgumentException>(() => p.Read(data, 0));
        StringAssert.Contains(c.Message, "'Label'");
        var m = Assert.ThrowsExactly<ArgumentException>(() => new ImageBatchPipeline(new ImageBatchPipelineOptions { ImageColumnName = "Nope" }).Read(data, 0));
        StringAssert.Contains(m.Message, "'Nope'");
    }
}
