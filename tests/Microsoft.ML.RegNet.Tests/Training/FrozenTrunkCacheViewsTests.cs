using System.Text.Json.Nodes;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Training;
using static Microsoft.ML.RegNet.Tests.Training.FrozenTrunkCacheTests;

namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>
/// CachedAugmentedViews = K with augmentation: epochs 0…K-1 read and augment the images and keep the frozen trunk's
/// outputs, later epochs e train on view e mod K from the cache. Checked against training that reads the images every
/// epoch with view e mod K's augmentation (the pipeline's augmentation epoch, itself checked in ImageBatchPipelineTests).
/// </summary>
[TestClass]
public sealed class FrozenTrunkCacheViewsTests
{
    [TestMethod]
    public void EpochsAfterTheFirstKViewsReadNoImagesAndTheTrunkStaysBitIdentical()
    {
        using var data = new TinyImageData(perClass: 4, size: 40);
        var (start, weights) = StartingWeights(data, 21);
        using var _ = start;

        var epochs = new int[1];
        using (var model = data.Fit(DeletingImagesAfter(2, Augmented(weights, views: 2), data, epochs)))
        {
            Assert.AreEqual(4, epochs[0], "all four epochs trained");
            AssertTrunk(start, model.Model, "two cached views");
        }

        // Controls: without views every epoch reads the images; with two views the second epoch reads its own view.
        using var noViews = new TinyImageData(perClass: 4, size: 40);
        Assert.Throws<Exception>(() => noViews.Fit(DeletingImagesAfter(2, Augmented(weights, views: 0), noViews, new int[1])).Dispose(),
            "without CachedAugmentedViews the third epoch reads the deleted images");
        using var secondView = new TinyImageData(perClass: 4, size: 40);
        Assert.Throws<Exception>(() => secondView.Fit(DeletingImagesAfter(1, Augmented(weights, views: 2), secondView, new int[1])).Dispose(),
            "view 1 is read from the images in epoch 1");
    }

    [TestMethod]
    public void CachedViewsTrainAsReadingEveryEpochWithItsViewsAugmentation()
    {
        using var data = new TinyImageData(perClass: 4, size: 40);
        var (start, weights) = StartingWeights(data, 22);
        using var _ = start;

        using var cached = data.Fit(Augmented(weights, views: 2));
        var readOptions = Augmented(weights, views: 2);
        readOptions.ReadCachedViewsFromImages = true;
        using var read = data.Fit(readOptions);
        using var fresh = data.Fit(Augmented(weights, views: 0));

        AssertClose(read.Model, cached.Model, "cached views and views read from the images");
        AssertTrunk(start, cached.Model, "cached");
        // Epochs 2 and 3 with their own augmentation train otherwise: the comparison above can tell views apart.
        Assert.IsFalse(fresh.Model.Classifier!.weight!.allclose(cached.Model.Classifier!.weight!, rtol: 0, atol: 1e-6),
            "fresh augmentation in epochs 2 and 3 gives the same classifier");
    }

    [TestMethod]
    public void ViewsBeyondTheMemoryBudgetSpillToDiskWithTheSameResultAndTheLogCountsViews()
    {
        using var data = new TinyImageData(perClass: 4, size: 40);
        var (start, weights) = StartingWeights(data, 25);
        using var _ = start;
        var ml = new MLContext(1);
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        using var a = ml.MulticlassClassification.Trainers.RegNet(Augmented(weights, views: 2)).Fit(Prepared(ml, data));
        var onDisk = Augmented(weights, views: 2);
        onDisk.FrozenTrunkCacheMegabytes = 0;
        using var b = data.Fit(onDisk);
        TinyImageData.AssertSameWeights(a.Model, b.Model);
        lock (log)
            Assert.ContainsSingle(log.Where(m => m.Contains("Frozen trunk cached: 2 augmented views of each row, 16 outputs", StringComparison.Ordinal)),
                string.Join(Environment.NewLine, log.Where(m => m.Contains("trunk", StringComparison.Ordinal))));
    }

    [TestMethod]
    public void AResumedRunRefillsItsViewAndTrainsAsTheUninterruptedOne()
    {
        using var data = new TinyImageData(perClass: 4, size: 40);
        var (start, weights) = StartingWeights(data, 23);
        using var _ = start;
        string workspace = Directory.CreateTempSubdirectory("regnet-views-resume-").FullName;
        try
        {
            using var straight = data.Fit(Augmented(weights, views: 2));

            // Cancelled once epoch 2 (view 0, from the cache) has ended: the resumed Fit starts epoch 3 with an empty
            // cache and must read view 1's augmentation, not epoch 3's, in epoch 3's order.
            using var cancel = new CancellationTokenSource();
            var interrupted = Augmented(weights, views: 2);
            interrupted.WorkspacePath = workspace;
            interrupted.CancellationToken = cancel.Token;
            interrupted.MetricsCallback = m => { if (m.Phase == MetricsPhase.TrainEpoch && m.Epoch == 2) cancel.Cancel(); };
            data.Fit(interrupted).Dispose();

            var resumed = Augmented(weights, views: 2);
            resumed.ResumeFrom = Directory.GetDirectories(Path.Combine(workspace, "runs")).Single();
            var epochs = new List<int>();
            resumed.MetricsCallback = m => { if (m.Phase == MetricsPhase.TrainEpoch) epochs.Add(m.Epoch); };
            using var continued = data.Fit(resumed);

            CollectionAssert.AreEqual(new[] { 3 }, epochs, "the resumed Fit trained epoch 3 only");
            AssertClose(straight.Model, continued.Model, "uninterrupted and resumed");
        }
        finally
        {
            Directory.Delete(workspace, true);
        }
    }

    [TestMethod]
    public void NegativeViewsAreRefusedAndViewsWithoutAugmentationChangeNothing()
    {
        var ml = new MLContext(1);
        var e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.RegNet(new RegNetTrainer.Options { CachedAugmentedViews = -1 }));
        StringAssert.Contains(e.Message, "CachedAugmentedViews");

        using var data = new TinyImageData(perClass: 4, size: 40);
        var (start, weights) = StartingWeights(data, 24);
        using var _ = start;
        using var today = data.Fit(Options(weights, cache: true));
        var withViews = Options(weights, cache: true);
        withViews.CachedAugmentedViews = 3;
        // Without augmentation the one view is complete after the first epoch, whatever K says.
        var epochs = new int[1];
        using var same = data.Fit(DeletingImagesAfter(1, withViews, data, epochs));
        Assert.AreEqual(3, epochs[0]);
        TinyImageData.AssertSameWeights(today.Model, same.Model);
    }

    [TestMethod]
    public void TheCacheMayBeTurnedOffOnResumeOnlyWithoutAugmentedViews()
    {
        JsonObject Config(bool cache, int views, bool augment)
        {
            var o = Augmented("w", views);
            o.CacheFrozenTrunk = cache;
            if (!augment) o.Augmentation = AugmentationOptions.Evaluation();
            var columns = new InputColumns(new KeyDataViewType(typeof(uint), 2), new[] { "a", "b" }, ImageIsBytes: false);
            return TrainerConfig.ToJson(TrainerConfig.Describe(o, TinyImageData.TinySpec, columns, 5, 8));
        }
        Assert.IsEmpty(TrainerConfig.Compare(Config(true, 0, true), Config(false, 0, true)).Refused);
        Assert.IsEmpty(TrainerConfig.Compare(Config(true, 2, false), Config(false, 2, false)).Refused);
        var refused = TrainerConfig.Compare(Config(true, 2, true), Config(false, 2, true)).Refused;
        Assert.HasCount(1, refused);
        StringAssert.StartsWith(refused[0], "CacheFrozenTrunk:");
        StringAssert.StartsWith(TrainerConfig.Compare(Config(true, 2, true), Config(true, 3, true)).Refused.Single(), "CachedAugmentedViews:");
    }

    private static RegNetTrainer.Options Augmented(string weights, int views)
    {
        var options = Options(weights, cache: true);
        options.MaxEpochs = 4;
        options.Augmentation = AugmentationOptions.Training();
        options.CachedAugmentedViews = views;
        return options;
    }

    private static void AssertClose(RegNetModel expected, RegNetModel actual, string what)
    {
        var b = actual.state_dict();
        foreach (var (name, tensor) in expected.state_dict())
            Assert.IsTrue(tensor.allclose(b[name], rtol: 0, atol: 1e-6), $"{name} differs between {what}");
    }
}
