namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>
/// The decoded image cache: without augmentation the first epoch's preprocessed images train every later epoch, with
/// the same result as reading the files each epoch; the image files are deleted after the epoch that fills the cache, so a
/// run that still read them would fail.
/// </summary>
[TestClass]
public sealed class DecodedImageCacheTests
{
    [TestMethod]
    public void LaterEpochsReadNoImageFileAndTrainAsWithoutTheCache()
    {
        using var data = new TinyImageData(perClass: 4, size: 40);
        var reading = Options(epochs: 3);
        reading.DecodedImageCacheMegabytes = 0;
        using var everyEpoch = data.Fit(reading);

        var log = new List<string>();
        var cached = Options(epochs: 3);
        FrozenTrunkCacheTests.DeletingImagesAfter(1, cached, data, new int[1]);
        using var fromCache = data.Fit(cached, m => { lock (log) log.Add(m); });
        TinyImageData.AssertSameWeights(everyEpoch.Model, fromCache.Model);
        lock (log) Assert.ContainsSingle(log.Where(m => m.Contains("Decoded images cached: 8 images", StringComparison.Ordinal)));
    }

    [TestMethod]
    public void ImagesBeyondTheBudgetAreNotCachedAndTheLogSaysSo()
    {
        using var data = new TinyImageData(perClass: 12, size: 40);
        var reading = Options(epochs: 2, imageSize: 64); // 24 images × 3 × 64 × 64 floats = 1.1 MiB
        reading.DecodedImageCacheMegabytes = 0;
        using var everyEpoch = data.Fit(reading);
        var log = new List<string>();
        var small = Options(epochs: 2, imageSize: 64);
        small.DecodedImageCacheMegabytes = 1;
        using var overBudget = data.Fit(small, m => { lock (log) log.Add(m); });
        TinyImageData.AssertSameWeights(everyEpoch.Model, overBudget.Model);
        lock (log)
        {
            Assert.ContainsSingle(log.Where(m => m.Contains("Decoded images not cached: they need more than DecodedImageCacheMegabytes (1 MiB)", StringComparison.Ordinal)));
            Assert.IsFalse(log.Any(m => m.Contains("Decoded images cached", StringComparison.Ordinal)));
        }
    }

    [TestMethod]
    public void AfterUnfreezingTheImagesAreCachedInsteadOfTheTrunk()
    {
        using var data = new TinyImageData(perClass: 4, size: 40);
        var (start, weights) = FrozenTrunkCacheTests.StartingWeights(data, 23);
        using var _ = start;
        var reading = SecondPhase(weights);
        reading.CacheFrozenTrunk = false;
        reading.DecodedImageCacheMegabytes = 0;
        using var everyEpoch = data.Fit(reading);
        // Epoch 0 fills the trunk cache, epoch 1 trains on it, epoch 2 (unfrozen) reads the images and fills the image cache, epoch 3 trains on that.
        var cached = SecondPhase(weights);
        FrozenTrunkCacheTests.DeletingImagesAfter(3, cached, data, new int[1]);
        var log = new List<string>();
        using var fromCaches = data.Fit(cached, m => { lock (log) log.Add(m); });
        foreach (var (name, expected) in everyEpoch.Model.state_dict())
            Assert.IsTrue(expected.allclose(fromCaches.Model.state_dict()[name], rtol: 0, atol: 1e-6), $"{name} differs between cached and uncached runs");
        lock (log)
        {
            Assert.ContainsSingle(log.Where(m => m.Contains("Frozen trunk cached: 1 view of each row", StringComparison.Ordinal)), "epoch 1 trained on the trunk cache");
            Assert.ContainsSingle(log.Where(m => m.Contains("Decoded images cached: 8 images", StringComparison.Ordinal)), "epoch 3 trained on the image cache");
        }
    }

    [TestMethod]
    public void UnfreezingAfterTheFirstEpochKeepsTheImagesNotTheTrunk()
    {
        // Epoch 0 is the only frozen one: trunk outputs would never be replayed, so the images are kept from epoch 0 on.
        using var data = new TinyImageData(perClass: 4, size: 40);
        var (start, weights) = FrozenTrunkCacheTests.StartingWeights(data, 24);
        using var _ = start;
        var reading = SecondPhase(weights);
        reading.MaxEpochs = 3;
        reading.UnfreezeAfterEpochs = 1;
        reading.DecodedImageCacheMegabytes = 0;
        using var everyEpoch = data.Fit(reading);
        var cached = SecondPhase(weights);
        cached.MaxEpochs = 3;
        cached.UnfreezeAfterEpochs = 1;
        FrozenTrunkCacheTests.DeletingImagesAfter(1, cached, data, new int[1]);
        var log = new List<string>();
        using var fromImages = data.Fit(cached, m => { lock (log) log.Add(m); });
        TinyImageData.AssertSameWeights(everyEpoch.Model, fromImages.Model);
        lock (log)
        {
            Assert.IsFalse(log.Any(m => m.Contains("Frozen trunk cached", StringComparison.Ordinal)), "no trunk cache when no frozen epoch replays it");
            Assert.ContainsSingle(log.Where(m => m.Contains("Decoded images cached: 8 images", StringComparison.Ordinal)));
        }
    }

    private sealed class PathIn
    {
        public string ImagePath { get; set; } = "";
    }

    private sealed class PathOut
    {
        public string CountedPath { get; set; } = "";
    }

    [TestMethod]
    public void ANewRunReadsItsFirstEpochWhileItSetsUpAndReadsEachImageOnce()
    {
        using var data = new TinyImageData(perClass: 4, size: 40);
        bool readBeforeTheFirstStep = false;
        var reads = FitCountingReads(data, Options(epochs: 3), reads =>
        {
            Waiting.Until(() => reads() > 0);
            readBeforeTheFirstStep = reads() > 0;
        });
        Assert.IsTrue(readBeforeTheFirstStep, "the first epoch's images are read while the run sets up");
        Assert.AreEqual(data.Rows.Count, reads(), "each image read once: the started epoch is the first epoch, later ones come from the cache");
    }

    [TestMethod]
    [DataRow(1, true, DisplayName = "the epoch's images fit DecodedImageCacheMegabytes: all decoded before the first step")]
    [DataRow(0, false, DisplayName = "no budget for decoded images: the pipeline's usual depth")]
    public void TheFirstEpochDecodesAheadAsFarAsTheDecodedImageBudgetAllows(int megabytes, bool wholeEpoch)
    {
        using var data = new TinyImageData(perClass: 24, size: 40);
        var options = Options(epochs: 1);
        options.BatchSize = 2;
        options.Shuffle = false; // a shuffle buffer would read every row at once; unshuffled, rows are read as batches are queued
        options.DecodedImageCacheMegabytes = megabytes; // 48 images of 3×32×32 floats: 0.6 MB
        long readBeforeTheFirstStep = -1;
        FitCountingReads(data, options, reads =>
        {
            // Until every image was read, or none more for half a second (the reader waits for the consumer).
            Waiting.Until(() => reads() >= data.Rows.Count, reads, stillMilliseconds: 500);
            readBeforeTheFirstStep = reads();
        });
        // The usual depth: PrefetchBatches (one per core, at least 2) queued, one per worker, one in the reader's hands, one spare.
        long usual = (Math.Max(2, Environment.ProcessorCount) + options.WorkerThreads + 2) * options.BatchSize;
        if (wholeEpoch) Assert.AreEqual(data.Rows.Count, readBeforeTheFirstStep, "the whole first epoch is decoded while the run sets up");
        else Assert.IsTrue(readBeforeTheFirstStep > 0 && readBeforeTheFirstStep <= usual && usual < data.Rows.Count,
            $"{readBeforeTheFirstStep} images read before the first step; the usual depth reads at most {usual} of {data.Rows.Count}");
    }

    // Fits with a counter of the image column's reads (every time its getter runs, i.e. every image file LoadImages reads)
    // and a run folder: it opens after the model, the weights and the optimizer, before the loop asks for its first batch,
    // which is when beforeTheFirstStep runs. Returns the counter.
    private static Func<long> FitCountingReads(TinyImageData data, RegNetTrainer.Options options, Action<Func<long>> beforeTheFirstStep)
    {
        string workspace = Directory.CreateTempSubdirectory("regnet-first-epoch-").FullName;
        try
        {
            var ml = new MLContext(seed: 1);
            var counter = new long[1];
            long Reads() => Interlocked.Read(ref counter[0]);
            var view = ml.Data.LoadFromEnumerable(data.Rows);
            var prepared = ml.Transforms.Conversion.MapValueToKey("Label", nameof(TinyImageData.Row.Label))
                .Append(ml.Transforms.CustomMapping<PathIn, PathOut>((i, o) =>
                {
                    Interlocked.Increment(ref counter[0]);
                    o.CountedPath = i.ImagePath;
                }, contractName: null))
                .Append(ml.Transforms.LoadImages("Image", null, nameof(PathOut.CountedPath)))
                .Fit(view).Transform(view);
            options.WorkspacePath = workspace;
            options.RunFolderOpened = _ => beforeTheFirstStep(Reads);
            using var model = ml.MulticlassClassification.Trainers.RegNet(options).Fit(prepared);
            return Reads;
        }
        finally
        {
            Directory.Delete(workspace, recursive: true);
        }
    }

    [TestMethod]
    public void ANegativeBudgetIsRefused()
    {
        var options = Options(epochs: 1);
        options.DecodedImageCacheMegabytes = -1;
        var e = Assert.ThrowsExactly<ArgumentException>(() => new MLContext(1).MulticlassClassification.Trainers.RegNet(options));
        Assert.Contains("DecodedImageCacheMegabytes must be ≥ 0", e.Message);
    }

    private static RegNetTrainer.Options Options(int epochs, int imageSize = 32) => new()
    {
        Spec = TinyImageData.TinySpec, ImageSize = imageSize, BatchSize = 3, MaxEpochs = epochs, Seed = 3, WorkerThreads = 1,
        Augmentation = AugmentationOptions.Evaluation(), Mixing = new MixingOptions { MixupAlpha = 0.4 }, LearningRate = 0.01,
    };

    private static RegNetTrainer.Options SecondPhase(string weights)
    {
        var options = Options(epochs: 4);
        options.Mixing = new MixingOptions(); // the trunk cache needs unmixed images
        options.StartingWeightsPath = weights;
        options.FreezeStages = 4;
        options.UnfreezeAfterEpochs = 2;
        return options;
    }
}
