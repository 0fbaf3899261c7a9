using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Tests.Training;
using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet.Tests.Reliability;

/// <summary>What a resume checks and continues, divergence, cancellation before start, and starting from a checkpoint.</summary>
[TestClass]
public sealed class ResumeTests
{
    private static readonly RegNetSpec Tiny = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8, name: "tiny");

    private static RegNetTrainer.Options TinyOptions(int epochs = 2) => new()
    {
        Spec = Tiny, ImageSize = 32, BatchSize = 8, MaxEpochs = epochs, LearningRate = 3e-3, WorkerThreads = 2, Seed = 5,
        Augmentation = AugmentationOptions.Training(0.5) with { LightingStd = 0 }, LogEveryNSteps = 1,
    };

    private static RegNetTransformer Fit(IEnumerable<TinyImageData.Row> rows, RegNetTrainer.Options options)
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", nameof(TinyImageData.Row.Label))
            .Append(ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath)))
            .Append(ml.MulticlassClassification.Trainers.RegNet(options));
        return pipeline.Fit(view).LastTransformer;
    }

    private static string SingleRun(string workspace) => Directory.GetDirectories(Path.Combine(workspace, "runs")).Single();

    private static List<(string Phase, long Step)> Records(string run) => File.ReadAllLines(Path.Combine(run, "metrics.jsonl"))
        .Select(l => JsonNode.Parse(l)!).Select(n => ((string)n["phase"]!, (long)n["step"]!)).ToList();

    [TestMethod]
    public void ResumeRefusesChangedOptionsAndDataListingEveryDifferenceAndAcceptsSafeChanges()
    {
        using var data = new TinyImageData(perClass: 8);
        string workspace = Directory.CreateTempSubdirectory("regnet-resume-check-").FullName;
        try
        {
            var first = TinyOptions(epochs: 1);
            first.WorkspacePath = workspace;
            Fit(data.Rows, first).Dispose();
            string run = SingleRun(workspace);

            var changed = TinyOptions(epochs: 2);
            changed.ResumeFrom = run;
            changed.BatchSize = 4;
            changed.ImageSize = 40;
            changed.Optimizer = OptimizerKind.Sgd;
            var e = Assert.ThrowsExactly<ArgumentException>(() => Fit(data.Rows.Take(12), changed));
            foreach (var key in new[] { "BatchSize: 8 → 4", "ImageSize: 32 → 40", "Optimizer: \"AdamW\" → \"Sgd\"", "training_rows: 16 → 12", "latest.ckpt" })
                StringAssert.Contains(e.Message, key);
            StringAssert.DoesNotMatch(e.Message, new System.Text.RegularExpressions.Regex("MaxEpochs"), "MaxEpochs may change");

            var further = TinyOptions(epochs: 2);
            further.ResumeFrom = run;
            further.LogEveryNSteps = 2;
            Fit(data.Rows, further).Dispose();
            Assert.AreEqual(run, SingleRun(workspace), "the resume continues the run folder");
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "config.json")))!;
            Assert.AreEqual(2, (int)config["MaxEpochs"]!);
            var resumes = config["resumes"]!.AsArray();
            Assert.HasCount(1, resumes);
            CollectionAssert.Contains(resumes[0]!["changed"]!.AsArray().Select(c => (string)c!).ToList(), "MaxEpochs: 1 → 2");
            Assert.AreEqual(4L, Checkpoint.ReadHeader(Path.Combine(run, "checkpoints", "latest.ckpt")).State.GlobalStep);
        }
        finally
        {
            Directory.Delete(workspace, true);
        }
    }

    [TestMethod]
    public void ResumeRefusesAnotherArchitectureListingTheDifferences()
    {
        using var data = new TinyImageData(perClass: 8);
        string workspace = Directory.CreateTempSubdirectory("regnet-resume-arch-").FullName;
        try
        {
            var first = TinyOptions(epochs: 1);
            first.WorkspacePath = workspace;
            Fit(data.Rows, first).Dispose();
            var other = TinyOptions(epochs: 2);
            other.ResumeFrom = SingleRun(workspace);
            other.Spec = RegNetSpec.Create(depth: 4, w0: 16, wa: 8, wm: 2, groupWidth: 8, name: "wider");
            other.BatchSize = 4;
            var e = Assert.Throws<Exception>(() => Fit(data.Rows, other));
            foreach (var key in new[] { "BatchSize: 8 → 4", "latest.ckpt" })
                StringAssert.Contains(e.Message, key);
            StringAssert.Matches(e.Message, new System.Text.RegularExpressions.Regex("(architecture|spec|W0|wider)", System.Text.RegularExpressions.RegexOptions.IgnoreCase));
        }
        finally
        {
            Directory.Delete(workspace, true);
        }
    }

    [TestMethod]
    public void EarlyStoppingPatienceMayChangeOnResumeButNotItsMetric()
    {
        using var data = new TinyImageData(perClass: 1);
        var ml = new MLContext(1);
        var view = ml.Data.LoadFromEnumerable(data.Rows);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath)))
            .Fit(view).Transform(view);
        var columns = InputColumns.Resolve(keyed.Schema, "Label", "Image", "test");
        JsonObject Config(EarlyStoppingOptions? stopping)
        {
            var o = TinyOptions();
            o.EarlyStopping = stopping;
            return TrainerConfig.ToJson(TrainerConfig.Describe(o, Tiny, columns, 5, 16));
        }
        var (refused, allowed) = TrainerConfig.Compare(Config(null), Config(new EarlyStoppingOptions(Patience: 3)));
        Assert.IsEmpty(refused);
        Assert.HasCount(1, allowed);
        (refused, allowed) = TrainerConfig.Compare(Config(new EarlyStoppingOptions(Patience: 3)), Config(new EarlyStoppingOptions(Patience: 9, MinDelta: 0.01)));
        Assert.IsEmpty(refused);
        Assert.HasCount(1, allowed);
        (refused, _) = TrainerConfig.Compare(Config(new EarlyStoppingOptions()), Config(new EarlyStoppingOptions(EarlyStoppingMetric.ValidationLoss)));
        Assert.HasCount(1, refused);
        StringAssert.StartsWith(refused[0], "EarlyStopping:");
    }

    [TestMethod]
    public void ARunWrittenBeforeAnOptionExistedResumesWhenTheOptionHasItsDefault()
    {
        using var data = new TinyImageData(perClass: 2);
        var ml = new MLContext(1);
        var view = ml.Data.LoadFromEnumerable(data.Rows);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath)))
            .Fit(view).Transform(view);
        var columns = InputColumns.Resolve(keyed.Schema, "Label", "Image", "test");
        JsonObject Config(RegNetTrainer.Options o) => TrainerConfig.ToJson(TrainerConfig.Describe(o, Tiny, columns, 5, 4));
        // An older version wrote no CachedAugmentedViews (an int, default 0) and no LayerDecay (null by default).
        var old = Config(TinyOptions());
        Assert.IsTrue(old.Remove(nameof(RegNetTrainer.Options.CachedAugmentedViews)));
        var (refused, allowed) = TrainerConfig.Compare(old, Config(TinyOptions()));
        Assert.IsEmpty(refused, string.Join("; ", refused));
        Assert.IsEmpty(allowed);
        var changed = TinyOptions();
        changed.CachedAugmentedViews = 2;
        (refused, _) = TrainerConfig.Compare(old, Config(changed));
        Assert.HasCount(1, refused);
        StringAssert.StartsWith(refused[0], "CachedAugmentedViews: 0 → 2");
    }

    [TestMethod]
    public void ResumingACheckpointFileContinuesItsRunFolderAndRemovesInterruptedWritesOnly()
    {
        using var data = new TinyImageData(perClass: 8);
        string workspace = Directory.CreateTempSubdirectory("regnet-resume-file-").FullName;
        try
        {
            var reference = Fit(data.Rows, TinyOptions(epochs: 2));

            using var cancel = new CancellationTokenSource();
            var interrupted = TinyOptions(epochs: 2);
            interrupted.WorkspacePath = workspace;
            interrupted.CancellationToken = cancel.Token;
            interrupted.MetricsCallback = m => { if (m.Phase == MetricsPhase.TrainSteps && m.Step == 3) cancel.Cancel(); };
            Fit(data.Rows, interrupted).Dispose();
            string run = SingleRun(workspace);
            string checkpoints = Path.Combine(run, "checkpoints");
            string stale = Path.Combine(checkpoints, $".latest.ckpt.{Guid.NewGuid():N}.tmp");
            string notOurs = Path.Combine(checkpoints, "notes.tmp");
            File.WriteAllText(stale, "half a checkpoint");
            File.WriteAllText(notOurs, "the user's file");
            // Records written after the checkpoint (as a killed process leaves them) are dropped on resume.
            File.AppendAllText(Path.Combine(run, "metrics.jsonl"),
                "{\"phase\":\"TrainSteps\",\"epoch\":0,\"step\":4,\"loss\":1,\"accuracy\":0,\"top5\":1,\"learning_rate\":0.001,\"images_per_second\":1,\"images\":8}\n{\"phase\":\"Tra");

            var resumed = TinyOptions(epochs: 2);
            resumed.WorkspacePath = workspace;
            resumed.ResumeFrom = Path.Combine(checkpoints, "latest.ckpt");
            using var continued = Fit(data.Rows, resumed);

            Assert.AreEqual(run, SingleRun(workspace), "a checkpoint inside a run folder continues that folder");
            Assert.IsFalse(File.Exists(stale), "the interrupted write's temporary file is removed");
            Assert.IsTrue(File.Exists(notOurs), "other .tmp files are the user's");
            Assert.AreEqual(4L, Checkpoint.ReadHeader(Path.Combine(checkpoints, "latest.ckpt")).State.GlobalStep);
            var records = Records(run);
            Assert.HasCount(records.Distinct().Count(), records, string.Join(" ", records));
            CollectionAssert.AreEqual(new long[] { 1, 2, 3, 4 }, records.Where(r => r.Phase == "TrainSteps").Select(r => r.Step).ToArray());
            Assert.HasCount(records.Count + 1, File.ReadAllLines(Path.Combine(run, "metrics.csv")));
            TinyImageData.AssertSameWeights(reference.Model, continued.Model);
            reference.Dispose();
        }
        finally
        {
            Directory.Delete(workspace, true);
        }
    }

    [TestMethod]
    public void ADamagedLatestCheckpointIsRefusedAndPreviousResumesOnlyWhenAskedFor()
    {
        using var data = new TinyImageData(perClass: 8);
        string workspace = Directory.CreateTempSubdirectory("regnet-resume-previous-").FullName;
        try
        {
            var options = TinyOptions(epochs: 2);
            options.WorkspacePath = workspace;
            options.CheckpointEveryNSteps = 1;
            using var reference = Fit(data.Rows, options);
            string run = SingleRun(workspace);
            string latest = Path.Combine(run, "checkpoints", "latest.ckpt");
            Assert.AreEqual(3L, Checkpoint.ReadHeader(Path.Combine(run, "checkpoints", "previous.ckpt")).State.GlobalStep,
                "the epoch-end checkpoint after step 4 replaced the step-3 one (no separate step-4 checkpoint before it)");
            var bytes = File.ReadAllBytes(latest);
            bytes[bytes.Length / 2] ^= 1;
            File.WriteAllBytes(latest, bytes);

            var resume = TinyOptions(epochs: 2);
            resume.ResumeFrom = run;
            var e = Assert.ThrowsExactly<InvalidDataException>(() => Fit(data.Rows, resume));
            StringAssert.Contains(e.Message, latest);
            StringAssert.Contains(e.Message, "ResumeFromPreviousCheckpoint = true");
            CollectionAssert.AreEqual(bytes, File.ReadAllBytes(latest), "a refused checkpoint is left as it was");

            resume.ResumeFromPreviousCheckpoint = true;
            using var continued = Fit(data.Rows, resume);
            TinyImageData.AssertSameWeights(reference.Model, continued.Model);
            CollectionAssert.AreEqual(bytes, File.ReadAllBytes(Path.Combine(run, "checkpoints", "latest.replaced.ckpt")), "the damaged file is kept aside");
            Assert.AreEqual(4L, Checkpoint.ReadHeader(latest).State.GlobalStep);
            var records = Records(run);
            Assert.HasCount(records.Distinct().Count(), records, string.Join(" ", records));

            // Naming previous.ckpt itself does the same: the checkpoint it supersedes is kept aside, not rotated over it.
            File.WriteAllBytes(latest, bytes);
            var named = TinyOptions(epochs: 2);
            named.ResumeFrom = Path.Combine(run, "checkpoints", "previous.ckpt");
            using var again = Fit(data.Rows, named);
            TinyImageData.AssertSameWeights(reference.Model, again.Model);
            CollectionAssert.AreEqual(bytes, File.ReadAllBytes(Path.Combine(run, "checkpoints", "latest.replaced.ckpt")));
        }
        finally
        {
            Directory.Delete(workspace, true);
        }
    }

    [TestMethod]
    public void DivergenceNeverWritesNonFiniteWeightsAndNamesAFiniteCheckpoint()
    {
        using var data = new TinyImageData(perClass: 8);
        string workspace = Directory.CreateTempSubdirectory("regnet-diverge-").FullName;
        try
        {
            var options = TinyOptions(epochs: 5);
            options.WorkspacePath = workspace;
            options.CheckpointEveryNSteps = 1;
            options.LearningRate = 1e12;
            options.WeightDecay = 0;
            var e = Assert.ThrowsExactly<InvalidOperationException>(() => Fit(data.Rows, options));
            StringAssert.Contains(e.Message, "Lower the learning rate");
            string run = SingleRun(workspace);
            var written = Directory.GetFiles(Path.Combine(run, "checkpoints"), "*.ckpt");
            foreach (var file in written)
            {
                using var model = new RegNetModel(Tiny, 2);
                Checkpoint.Load(file, model, optimizer: null);
                Assert.IsTrue(Checkpoint.IsFinite(model), $"{file} holds non-finite weights");
            }
            if (written.Length == 0) StringAssert.Contains(e.Message, "No checkpoint of this run has been written yet");
            else StringAssert.Contains(e.Message, "The last good checkpoint is " + Path.Combine(run, "checkpoints", "latest.ckpt"));
        }
        finally
        {
            Directory.Delete(workspace, true);
        }
    }

    [TestMethod]
    public void IsFiniteFindsANonFiniteWeight()
    {
        using var model = new RegNetModel(Tiny, 2);
        Assert.IsTrue(Checkpoint.IsFinite(model));
        using (TorchSharp.torch.no_grad()) model.Classifier!.bias!.fill_(float.NaN);
        Assert.IsFalse(Checkpoint.IsFinite(model));
    }

    [TestMethod]
    public void CancelledBeforeFitStartsThrowsAndWritesNothing()
    {
        using var data = new TinyImageData(perClass: 4);
        string workspace = Directory.CreateTempSubdirectory("regnet-cancelled-").FullName;
        try
        {
            var options = TinyOptions();
            options.WorkspacePath = workspace;
            options.CancellationToken = new CancellationToken(canceled: true);
            Assert.ThrowsExactly<OperationCanceledException>(() => Fit(data.Rows, options));
            Assert.IsFalse(Directory.Exists(Path.Combine(workspace, "runs")));
        }
        finally
        {
            Directory.Delete(workspace, true);
        }
    }

    [TestMethod]
    public void StartingWeightsMayBeACheckpointOfTheTrainerWithAnotherClassCount()
    {
        using var two = new TinyImageData(perClass: 8);
        using var three = new TinyImageData(perClass: 4, classes: new[] { "red", "blue", "green" });
        string workspace = Directory.CreateTempSubdirectory("regnet-start-ckpt-").FullName;
        try
        {
            var first = TinyOptions(epochs: 1);
            first.WorkspacePath = workspace;
            Fit(two.Rows, first).Dispose();
            string checkpoint = Path.Combine(SingleRun(workspace), "checkpoints", "latest.ckpt");

            var next = TinyOptions(epochs: 1);
            next.StartingWeightsPath = checkpoint;
            next.FreezeStages = 4; // stem and stages keep the checkpoint's weights, so the test can see they were loaded
            using var model = Fit(three.Rows, next);
            Assert.AreEqual(3, model.Model.NumberOfClasses);
            using var saved = new RegNetModel(Tiny, 2);
            Checkpoint.Load(checkpoint, saved, optimizer: null);
            var trained = model.Model.state_dict();
            foreach (var (name, tensor) in saved.state_dict().Where(kv => !kv.Key.StartsWith("head.", StringComparison.Ordinal)))
                Assert.IsTrue(tensor.eq(trained[name]).all().item<bool>(), $"{name} was not loaded from the checkpoint");

            // Negative case: a checkpoint of another architecture is refused, naming it.
            var other = TinyOptions(epochs: 1);
            other.Spec = null;
            other.Architecture = "X002";
            other.StartingWeightsPath = checkpoint;
            var e = Assert.ThrowsExactly<ArgumentException>(() => Fit(two.Rows, other));
            StringAssert.Contains(e.Message, checkpoint);
        }
        finally
        {
            Directory.Delete(workspace, true);
        }
    }
}
