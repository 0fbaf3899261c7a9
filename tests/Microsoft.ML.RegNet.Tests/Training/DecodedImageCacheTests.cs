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
        string workspace = Directory.CreateTempSubdirectory("regnet-first-epoch-").FullName;
        try
        {
            var ml = new MLContext(seed: 1);
            long reads = 0;
            var view = ml.Data.LoadFromEnumerable(data.Rows);
            // Counts every time the image column's getter runs, i.e. every image file LoadImages reads.
            var prepared = ml.Transforms.Conversion.MapValueToKey("Label", nameof(TinyImageData.Row.Label))
                .Append(ml.Transforms.CustomMapping<PathIn, PathOut>((i, o) =>
                {
                    Interlocked.Increment(ref reads);
                    o.CountedPath = i.ImagePath;
                }, contractName: null))
                .Append(ml.Transforms.LoadImages("Image", null, nameof(PathOut.CountedPath)))
                .Fit(view).Transform(view);
            var options = Options(epochs: 3);
            options.WorkspacePath = workspace;
            bool readBeforeTheFirstStep = false;
            // The run folder opens after the weights and the optimizer, before the loop asks for its first batch.
            options.RunFolderOpened = _ =>
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (Interlocked.Read(ref reads) == 0 && clock.Elapsed < TimeSpan.FromSeconds(20)) Thread.Sleep(5);
                readBeforeTheFirstStep = Interlocked.Read(ref reads) > 0;
            };
            using var model = ml.MulticlassClassification.Trainers.RegNet(options).Fit(prepared);
            Assert.IsTrue(readBeforeTheFirstStep, "the first epoch's images are read while the run sets up");
            Assert.AreEqual(data.Rows.Count, Interlocked.Read(ref reads), "each image read once: the started epoch is the first epoch, later ones come from the cache");
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
