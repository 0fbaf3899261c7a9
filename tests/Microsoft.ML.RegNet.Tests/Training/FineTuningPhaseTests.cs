using Microsoft.ML.RegNet.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>
/// Fine-tuning's second phase: frozen parts that start training after <c>UnfreezeAfterEpochs</c>, and layer-wise
/// learning-rate decay. The learning rates are checked against Adam's first step, which moves every parameter with a
/// gradient by its learning rate (m/√v = g/|g|), so the step size of each group is its rate.
/// </summary>
[TestClass]
public sealed class FineTuningPhaseTests
{
    [TestMethod]
    public void LayerDecayGroupsEveryParameterOnceFromStemToHead()
    {
        using var model = new RegNetModel(TinyImageData.TinySpec, 3, generator: new Generator(1));
        var groups = ParameterGroups.Of(model, _ => true, layerDecay: 0.5);
        int stages = TinyImageData.TinySpec.StageDepths.Count;
        var names = new[] { "stem" }.Concat(Enumerable.Range(1, stages).Select(i => $"s{i}")).Append("head").ToArray();
        CollectionAssert.AreEqual(names, groups.Select(g => g.Name).ToArray());
        CollectionAssert.AreEqual(names.Select((_, i) => Math.Pow(0.5, names.Length - 1 - i)).ToArray(), groups.Select(g => g.LearningRateScale).ToArray());
        // Every parameter once, and each in the group its state-dict name says.
        var byHandle = model.named_parameters().ToDictionary(p => p.parameter.Handle, p => p.name);
        var seen = groups.SelectMany(g => g.Parameters.Select(p => (g.Name, Param: byHandle[p.Handle]))).ToList();
        Assert.HasCount(byHandle.Count, seen);
        Assert.HasCount(byHandle.Count, seen.Select(s => s.Param).Distinct().ToList());
        foreach (var (group, name) in seen)
            Assert.IsTrue(name.StartsWith(group + ".", StringComparison.Ordinal), $"{name} is in group {group}");
        Assert.HasCount(1, ParameterGroups.Of(model, _ => true, layerDecay: null));
    }

    [TestMethod]
    public void EachGroupStepsByItsOwnLearningRate()
    {
        using var data = new TinyImageData(perClass: 4, size: 40);
        const double lr = 0.01, decay = 0.5;
        var options = Options(data, epochs: 1);
        options.BatchSize = data.Rows.Count; // one step
        options.Schedule = LearningRateScheduleKind.Constant;
        options.WarmupEpochs = 0;
        options.WeightDecay = 0;
        options.LearningRate = lr;
        options.LayerDecay = decay;
        options.FreezeStages = 0;
        options.UnfreezeAfterEpochs = null;
        var (start, weights) = FrozenTrunkCacheTests.StartingWeights(data, 21);
        using var _ = start;
        options.StartingWeightsPath = weights;
        using var trained = data.Fit(options);

        var after = trained.Model.state_dict();
        var groups = new[] { "stem" }.Concat(Enumerable.Range(1, TinyImageData.TinySpec.StageDepths.Count).Select(i => $"s{i}")).Append("head").ToArray();
        foreach (var (group, depth) in groups.Select((g, i) => (g, groups.Length - 1 - i)))
        {
            double largest = start.named_parameters().Where(p => p.name.StartsWith(group + ".", StringComparison.Ordinal))
                .Max(p => (after[p.name] - p.parameter).abs().max().item<float>());
            double expected = lr * Math.Pow(decay, depth);
            Assert.AreEqual(expected, largest, expected * 1e-3, $"{group}: Adam's first step should move it by its learning rate {expected}");
        }
    }

    [TestMethod]
    public void FrozenPartsTrainAfterUnfreezingAndTheCachedPhaseChangesNothing()
    {
        using var data = new TinyImageData(perClass: 4, size: 40);
        var (start, weights) = FrozenTrunkCacheTests.StartingWeights(data, 22);
        using var _ = start;
        using var withCache = data.Fit(Options(data, epochs: 3, weights));
        var uncachedOptions = Options(data, epochs: 3, weights);
        uncachedOptions.CacheFrozenTrunk = false;
        using var withoutCache = data.Fit(uncachedOptions);
        // Epochs 0 and 1 frozen (epoch 1 from the cache in the first run), epoch 2 trains everything: the same either way.
        foreach (var (name, expected) in withoutCache.Model.state_dict())
            Assert.IsTrue(expected.allclose(withCache.Model.state_dict()[name], rtol: 0, atol: 1e-6), $"{name} differs between cached and uncached runs");

        var twoFrozenEpochs = Options(data, epochs: 2, weights);
        using var frozenOnly = data.Fit(twoFrozenEpochs);
        var trained = withCache.Model.state_dict();
        foreach (var (name, before) in start.state_dict())
        {
            if (name.StartsWith("head.", StringComparison.Ordinal) || name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue;
            Assert.IsTrue(before.eq(frozenOnly.Model.state_dict()[name]).all().item<bool>(), $"{name} changed in the frozen epochs");
            Assert.IsFalse(before.eq(trained[name]).all().item<bool>(), $"{name} did not change after unfreezing");
        }
    }

    [TestMethod]
    public void ResumingAcrossTheUnfreezingGivesTheUninterruptedWeights()
    {
        using var data = new TinyImageData(perClass: 4, size: 40);
        var (start, weights) = FrozenTrunkCacheTests.StartingWeights(data, 23);
        using var _ = start;
        string workspace = Directory.CreateTempSubdirectory("regnet-unfreeze-resume-").FullName;
        try
        {
            // Without the trunk cache: the cached trunk outputs of epoch 0's batches may differ in the last bit from
            // those the resumed run computes for epoch 1's batches.
            using var uninterrupted = data.Fit(Uncached(Options(data, epochs: 3, weights)));
            // Cancelled in the middle of epoch 1 (frozen); the resume finishes it and unfreezes in epoch 2.
            using var cancel = new CancellationTokenSource();
            var first = Uncached(Options(data, epochs: 3, weights));
            first.WorkspacePath = workspace;
            first.LogEveryNSteps = 1;
            first.MetricsCallback = m => { if (m.Phase == MetricsPhase.TrainSteps && m.Step == 3) cancel.Cancel(); };
            first.CancellationToken = cancel.Token;
            data.Fit(first).Dispose();
            var rest = Uncached(Options(data, epochs: 3, weights));
            rest.ResumeFrom = Directory.GetDirectories(Path.Combine(workspace, "runs")).Single();
            using var resumed = data.Fit(rest);
            TinyImageData.AssertSameWeights(uninterrupted.Model, resumed.Model);
        }
        finally
        {
            Directory.Delete(workspace, true);
        }
    }

    private static RegNetTrainer.Options Uncached(RegNetTrainer.Options options)
    {
        options.CacheFrozenTrunk = false;
        return options;
    }

    [TestMethod]
    public void InvalidSettingsAreRefusedWithTheReason()
    {
        var nothingFrozen = new RegNetTrainer.Options { Spec = TinyImageData.TinySpec, UnfreezeAfterEpochs = 1 };
        var e = Assert.Throws<ArgumentException>(() => new MLContext(1).MulticlassClassification.Trainers.RegNet(nothingFrozen));
        StringAssert.Contains(e.Message, "FreezeStages");
        var zero = new RegNetTrainer.Options { Spec = TinyImageData.TinySpec, FreezeStages = 2, UnfreezeAfterEpochs = 0 };
        Assert.Throws<ArgumentException>(() => new MLContext(1).MulticlassClassification.Trainers.RegNet(zero));
        foreach (double bad in new[] { 0.0, -0.5, 1.5, double.NaN })
        {
            var o = new RegNetTrainer.Options { Spec = TinyImageData.TinySpec, LayerDecay = bad };
            StringAssert.Contains(Assert.Throws<ArgumentException>(() => new MLContext(1).MulticlassClassification.Trainers.RegNet(o)).Message, "LayerDecay");
        }
    }

    // Stem and all stages frozen for two epochs, then everything trains with layer decay.
    private static RegNetTrainer.Options Options(TinyImageData data, int epochs, string? weights = null) => new()
    {
        Spec = TinyImageData.TinySpec, ImageSize = 32, BatchSize = 4, MaxEpochs = epochs, Seed = 5, StartingWeightsPath = weights,
        FreezeStages = 4, UnfreezeAfterEpochs = 2, LayerDecay = 0.7, Augmentation = AugmentationOptions.Evaluation(), WorkerThreads = 1,
        LearningRate = 0.01,
    };
}
