using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>
/// A frozen trunk costs nothing twice: with FreezeStages and no augmentation, epochs after the first train on the trunk
/// outputs kept from the first (no image is read again), with the results of training without the cache, and the frozen
/// weights are bit-identical before and after either way. The speed-up is measured in benchmarks/ (docs/benchmarks.md).
/// </summary>
[TestClass]
public sealed class FrozenTrunkCacheTests
{
    [TestMethod]
    public void CachedTrainingEqualsUncachedTrainingAndLeavesFrozenWeightsBitIdentical()
    {
        using var data = new TinyImageData(perClass: 6, size: 40);
        var (start, weights) = StartingWeights(data, 11);
        using var _ = start;

        using var cached = data.Fit(Options(weights, cache: true));
        using var uncached = data.Fit(Options(weights, cache: false));

        AssertTrunk(start, cached.Model, "cached");
        AssertTrunk(start, uncached.Model, "uncached");
        // The trained part: the same steps on the same trunk outputs in the same order.
        foreach (var (name, expected) in uncached.Model.state_dict())
            Assert.IsTrue(expected.allclose(cached.Model.state_dict()[name], rtol: 0, atol: 1e-6), $"{name} differs between cached and uncached training");
        Assert.IsFalse(start.Classifier!.weight!.allclose(cached.Model.Classifier!.weight!), "the classifier trained");

        var ml = new MLContext(1);
        var view = Prepared(ml, data);
        var a = ml.MulticlassClassification.Evaluate(cached.Transform(view));
        var b = ml.MulticlassClassification.Evaluate(uncached.Transform(view));
        Assert.AreEqual(b.MicroAccuracy, a.MicroAccuracy);
        Assert.AreEqual(b.LogLoss, a.LogLoss, 1e-5);
    }

    [TestMethod]
    public void EpochsAfterTheFirstReadNoImages()
    {
        // The images are deleted when the first epoch ends: only training from the cache can go on.
        using var data = new TinyImageData(perClass: 4, size: 40);
        var (start, weights) = StartingWeights(data, 12);
        using var _ = start;

        var epochs = new int[1];
        using (var model = data.Fit(DeletingImagesAfter(1, Options(weights, cache: true), data, epochs)))
            Assert.AreEqual(3, epochs[0], "all three epochs trained");

        using var again = new TinyImageData(perClass: 4, size: 40);
        var uncached = Options(weights, cache: false);
        uncached.DecodedImageCacheMegabytes = 0; // nor the decoded images
        var control = DeletingImagesAfter(1, uncached, again, new int[1]);
        Assert.Throws<Exception>(() => again.Fit(control).Dispose(), "without the caches the second epoch reads the deleted images");
    }

    // Counts ended epochs in epochs[0] and deletes the image files when the first `epochsRead` have ended.
    internal static RegNetTrainer.Options DeletingImagesAfter(int epochsRead, RegNetTrainer.Options options, TinyImageData data, int[] epochs)
    {
        options.MetricsCallback = m =>
        {
            if (m.Phase != MetricsPhase.TrainEpoch || ++epochs[0] != epochsRead) return;
            foreach (var row in data.Rows) File.Delete(row.ImagePath);
        };
        return options;
    }

    [TestMethod]
    public void CacheSpillsToDiskBeyondItsMemoryBudget()
    {
        using var data = new TinyImageData(perClass: 6, size: 40);
        var (start, weights) = StartingWeights(data, 13);
        using var _ = start;
        var inMemory = Options(weights, cache: true);
        var onDisk = Options(weights, cache: true);
        onDisk.FrozenTrunkCacheMegabytes = 0;
        using var a = data.Fit(inMemory);
        using var b = data.Fit(onDisk);
        TinyImageData.AssertSameWeights(a.Model, b.Model);
    }

    // A random tiny model saved as the starting weights of every Fit of a test.
    internal static (RegNetModel Model, string Path) StartingWeights(TinyImageData data, ulong seed)
    {
        var model = new RegNetModel(TinyImageData.TinySpec, 2, generator: new Generator(seed));
        string path = Path.Combine(data.Folder, "start.safetensors");
        RegNetWeights.SaveSafetensors(model, path);
        return (model, path);
    }

    internal static RegNetTrainer.Options Options(string weights, bool cache) => new()
    {
        Spec = TinyImageData.TinySpec, ImageSize = 32, BatchSize = 4, MaxEpochs = 3, Seed = 5, StartingWeightsPath = weights,
        FreezeStages = 4, Augmentation = AugmentationOptions.Evaluation(), CacheFrozenTrunk = cache, WorkerThreads = 1, LearningRate = 0.01,
    };

    internal static IDataView Prepared(MLContext ml, TinyImageData data)
    {
        var view = ml.Data.LoadFromEnumerable(data.Rows);
        return ml.Transforms.Conversion.MapValueToKey("Label", nameof(TinyImageData.Row.Label))
            .Append(ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath)))
            .Fit(view).Transform(view);
    }

    internal static void AssertTrunk(RegNetModel expected, RegNetModel actual, string what)
    {
        var trained = actual.state_dict();
        foreach (var (name, tensor) in expected.state_dict())
        {
            if (name.StartsWith("head.", StringComparison.Ordinal)) continue;
            Assert.IsTrue(tensor.eq(trained[name]).all().item<bool>(), $"{what}: frozen {name} changed");
        }
    }
}
