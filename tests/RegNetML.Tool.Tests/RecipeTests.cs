using Microsoft.ML.RegNet;
using RegNetML.Tool.Training;
using Spectre.Console.Testing;

namespace RegNetML.Tool.Tests;

[TestClass]
public sealed class RecipeTests
{
    [TestMethod]
    public void KerasRecipeTakesThePerModelTableAndEveryOptionOverridesIt()
    {
        var spec = RegNetSpec.FromName("X016");
        var keras = Recipes.Build(new TrainSettings { Recipe = "keras" }, spec);
        Assert.AreEqual(0.2, keras.Mixing.MixupAlpha, "X016's mixup in the Keras table");
        Assert.AreEqual(0.08, keras.Augmentation.AreaFactor);
        Assert.AreEqual(WeightDecaySemantics.DecoupledConstant, keras.WeightDecaySemantics);
        Assert.AreEqual(5, keras.WarmupEpochs);
        Assert.AreEqual(128, keras.LearningRateReferenceBatchSize);

        var overridden = Recipes.Build(new TrainSettings
        {
            Recipe = "keras", Mixup = 0.5, AreaFactor = 0.3, WeightDecay = 1e-4, Lr = 0.02, WarmupEpochs = 1, LabelSmoothing = 0.1,
            Epochs = 7, BatchSize = 16, ImageSize = 96, FreezeStages = 2, Seed = 9, Threads = 1, UnfreezeAfter = 3, LayerDecay = 0.75,
            CachedViews = 4, ImageCacheMegabytes = 64,
        }, spec);
        Assert.AreEqual((3, 0.75, 4), (overridden.UnfreezeAfterEpochs, overridden.LayerDecay, overridden.CachedAugmentedViews));
        Assert.AreEqual(64, overridden.DecodedImageCacheMegabytes);
        Assert.AreEqual(0.5, overridden.Mixing.MixupAlpha);
        Assert.AreEqual(0.3, overridden.Augmentation.AreaFactor);
        Assert.AreEqual(1e-4, overridden.WeightDecay);
        Assert.AreEqual(0.02, overridden.LearningRate);
        Assert.IsNull(overridden.LearningRateReferenceBatchSize, "--lr is the learning rate used, not scaled with the batch");
        Assert.AreEqual(1, overridden.WarmupEpochs);
        Assert.AreEqual(0.1, overridden.LabelSmoothing);
        Assert.AreEqual((7, 16, 96, 2, 9, 1), (overridden.MaxEpochs, overridden.BatchSize, overridden.ImageSize, overridden.FreezeStages, overridden.Seed, overridden.NumberOfThreads));
        Assert.AreEqual(WeightDecaySemantics.DecoupledConstant, overridden.WeightDecaySemantics, "what was not given stays the recipe's");
    }

    [TestMethod]
    public void PyclsAndFinetuneRecipes()
    {
        var spec = RegNetSpec.FromName("Y004");
        var pycls = Recipes.Build(new TrainSettings { Recipe = "pycls" }, spec);
        Assert.AreEqual(OptimizerKind.Sgd, pycls.Optimizer);
        Assert.IsTrue(pycls.Nesterov);
        Assert.AreEqual((0.1, 128), (pycls.LearningRate, pycls.LearningRateReferenceBatchSize!.Value));
        Assert.AreEqual(WeightDecaySemantics.CoupledL2, pycls.WeightDecaySemantics);
        Assert.AreEqual(ScheduleGranularity.PerEpoch, pycls.ScheduleGranularity);
        Assert.AreEqual(100, pycls.MaxEpochs);

        var finetune = Recipes.Build(new TrainSettings { Recipe = "finetune" }, spec);
        Assert.AreEqual(1e-4, finetune.LearningRate);
        Assert.AreEqual(10, finetune.MaxEpochs);
        Assert.AreEqual(0, finetune.Mixing.MixupAlpha);
    }

    [TestMethod]
    public void UnknownRecipeAndKerasRecipeForACustomSpecAreUserErrors()
    {
        var custom = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8, name: "tiny");
        StringAssert.Contains(Assert.ThrowsExactly<UserError>(() => Recipes.Build(new TrainSettings { Recipe = "timm" }, custom)).Message, "keras, pycls, finetune");
        StringAssert.Contains(Assert.ThrowsExactly<UserError>(() => Recipes.Build(new TrainSettings { Recipe = "keras" }, custom)).Message, "24 zoo models");
    }

    [TestMethod]
    public void PublishedWeightsOfflineAndMissingAreAOneLineUserError()
    {
        using var images = new ToolImages();
        string empty = Directory.CreateDirectory(Path.Combine(images.Root, "cache")).FullName;
        var saved = (Environment.GetEnvironmentVariable("REGNET_OFFLINE"), Environment.GetEnvironmentVariable("REGNET_WEIGHTS_CACHE"), Environment.GetEnvironmentVariable("REGNET_WEIGHTS_DIR"));
        try
        {
            Environment.SetEnvironmentVariable("REGNET_OFFLINE", "1");
            Environment.SetEnvironmentVariable("REGNET_WEIGHTS_CACHE", empty);
            Environment.SetEnvironmentVariable("REGNET_WEIGHTS_DIR", null);
            var run = ToolRun.Invoke("train", images.Folder("d", 2), "--arch", "X002", "--weights", "keras", "--workspace", images.Root);
            Assert.AreEqual(2, run.ExitCode, run.Output);
            StringAssert.Contains(run.Output, "regnetx002.h5 (RegNetX002, Keras) is not available offline");
        }
        finally
        {
            Environment.SetEnvironmentVariable("REGNET_OFFLINE", saved.Item1);
            Environment.SetEnvironmentVariable("REGNET_WEIGHTS_CACHE", saved.Item2);
            Environment.SetEnvironmentVariable("REGNET_WEIGHTS_DIR", saved.Item3);
        }
    }

    [TestMethod]
    public void OnlyMpiRankZeroDraws()
    {
        var terminal = new TestConsole();
        terminal.Profile.Capabilities.Interactive = true;
        terminal.Profile.Capabilities.Ansi = true;
        Assert.AreEqual(ProgressStyle.Live, TrainingProgress.StyleFor(terminal));
        string? saved = Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_RANK");
        try
        {
            Environment.SetEnvironmentVariable("OMPI_COMM_WORLD_RANK", "1");
            Assert.AreEqual(ProgressStyle.Silent, TrainingProgress.StyleFor(terminal));
            Environment.SetEnvironmentVariable("OMPI_COMM_WORLD_RANK", "0");
            Assert.AreEqual(ProgressStyle.Live, TrainingProgress.StyleFor(terminal));
        }
        finally
        {
            Environment.SetEnvironmentVariable("OMPI_COMM_WORLD_RANK", saved);
        }
    }
}
