using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet.Tests.Training;

[TestClass]
public sealed class LearningRateScheduleTests
{
    [TestMethod]
    public void PerEpochHalfCosineWithWarmupMatchesTheSeedTrainersLoggedValues()
    {
        // training_recipe.md §1.12: base 0.008, 100 epochs, 5 warmup epochs from 0.1, per epoch.
        var s = new LearningRateSchedule(0.008, 100, 1252, LearningRateScheduleKind.HalfCosine, ScheduleGranularity.PerEpoch, 5, 0.1);
        Assert.AreEqual(8.0e-4, s.At(0, 0), 1e-9);
        Assert.AreEqual(2.24e-3, s.At(1, 600), 1e-5);
        Assert.AreEqual(4.0e-3, s.At(50, 0), 1e-9);
        Assert.AreEqual(4.9247e-5, s.At(95, 0), 1e-9);
        Assert.AreEqual(1.973867e-6, s.At(99, 1251), 2e-10); // W&B logged float32 values
    }

    [TestMethod]
    public void PerStepWarmupIsLinearAndCosineReachesZero()
    {
        var s = new LearningRateSchedule(1e-3, 3, 10, LearningRateScheduleKind.HalfCosine, ScheduleGranularity.PerStep, 1, 0.1);
        Assert.AreEqual(1e-4, s.At(0, 0), 1e-12);
        Assert.AreEqual(1e-3 * (0.1 + 0.9 * 0.5) * 0.5 * (1 + Math.Cos(Math.PI * 0.5 / 3)), s.At(0, 5), 1e-12);
        Assert.AreEqual(1e-3 * 0.5 * (1 + Math.Cos(Math.PI * 2.5 / 3)), s.At(2, 5), 1e-12);
        Assert.AreEqual(0, new LearningRateSchedule(1, 3, 10).At(3, 0), 1e-12);
    }

    [TestMethod]
    public void StepScheduleAppliesGammaAtMilestones()
    {
        var s = new LearningRateSchedule(0.1, 10, 5, LearningRateScheduleKind.Step, ScheduleGranularity.PerEpoch, Milestones: new[] { 3, 6 }, Gamma: 0.1);
        Assert.AreEqual(0.1, s.At(2, 4), 1e-12);
        Assert.AreEqual(0.01, s.At(3, 0), 1e-12);
        Assert.AreEqual(0.001, s.At(9, 0), 1e-12);
    }
}

[TestClass]
public sealed class KerasRecipeTests
{
    [TestMethod]
    [DataRow("X002", 0.25, 0.0, 5e-5), DataRow("Y002", 0.16, 0.2, 1e-5), DataRow("Y006", 0.16, 0.2, 5e-5), DataRow("X064", 0.08, 0.3, 5e-5), DataRow("Y320", 0.08, 0.4, 5e-5)]
    public void PerModelSettingsFollowTheKerasAuthorsTable(string model, double areaFactor, double mixup, double decay)
    {
        var o = RegNetTrainer.Options.KerasRecipe(model);
        Assert.AreEqual(areaFactor, o.Augmentation.AreaFactor);
        Assert.AreEqual(mixup, o.Mixing.MixupAlpha);
        Assert.AreEqual(decay, o.WeightDecay);
        Assert.AreEqual(WeightDecaySemantics.DecoupledConstant, o.WeightDecaySemantics);
        Assert.AreEqual(ScheduleGranularity.PerEpoch, o.ScheduleGranularity);
        // 0.001 per 128 images: 0.008 at the seed's global batch of 1024 (training_recipe.md §1.11).
        Assert.AreEqual(0.008, o.LearningRate * 1024 / o.LearningRateReferenceBatchSize!.Value, 1e-12);
    }
}
