using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>The run folder as a metric sink: what a resumed run adds to the TensorBoard events.</summary>
[TestClass]
public sealed class RunDirectoryTests
{
    private static readonly RegNetSpec Tiny = TinyImageData.TinySpec;

    private static RegNetTrainer.Options TinyOptions(int epochs) => new()
    {
        Spec = Tiny, ImageSize = 32, BatchSize = 8, MaxEpochs = epochs, LearningRate = 3e-3, WorkerThreads = 2, Seed = 5,
        Augmentation = AugmentationOptions.Training(0.5) with { LightingStd = 0 }, LogEveryNSteps = 1,
    };

    [TestMethod]
    public void AResumeWritesEachStepToTensorBoardOnceAlthoughItReplaysStepsAfterItsCheckpoint()
    {
        using var data = new TinyImageData(perClass: 8); // 16 rows, batches of 8: 2 steps an epoch
        string workspace = Directory.CreateTempSubdirectory("regnet-tensorboard-").FullName;
        try
        {
            var first = TinyOptions(epochs: 2);
            first.WorkspacePath = workspace;
            data.Fit(first).Dispose();
            string run = Directory.GetDirectories(Path.Combine(workspace, "runs")).Single();
            string tensorboard = Path.Combine(run, "tensorboard");
            var written = TensorBoardEvents.ReadScalars(tensorboard).ToList();
            CollectionAssert.AreEqual(new long[] { 1, 2, 3, 4 }, Steps(written, "train/loss"), "the reader sees the first run's events");
            Assert.AreEqual(2L, Checkpoint.ReadHeader(Path.Combine(run, "checkpoints", RunDirectory.PreviousCheckpointName)).State.GlobalStep);

            // From the step-2 checkpoint, one epoch further: steps 3 and 4 run again (already in the events), 5 and 6 are new.
            var resumed = TinyOptions(epochs: 3);
            resumed.ResumeFrom = run;
            resumed.ResumeFromPreviousCheckpoint = true;
            data.Fit(resumed).Dispose();

            Assert.HasCount(2, Directory.GetFiles(tensorboard, "events.out.tfevents.*"), "the resume writes an event file of its own");
            var all = TensorBoardEvents.ReadScalars(tensorboard).ToList();
            var keys = all.Select(e => (e.Tag, e.Step)).ToList();
            Assert.HasCount(keys.Distinct().Count(), keys, string.Join(" ", keys.GroupBy(k => k).Where(g => g.Count() > 1).Select(g => g.Key)));
            CollectionAssert.AreEqual(new long[] { 1, 2, 3, 4, 5, 6 }, Steps(all, "train/loss"));
            CollectionAssert.AreEqual(new long[] { 1, 2, 3, 4, 5, 6 }, Steps(all, "learning_rate"));
            CollectionAssert.AreEqual(new long[] { 2, 4, 6 }, Steps(all, "train_epoch/loss"));
        }
        finally
        {
            Directory.Delete(workspace, true);
        }
    }

    private static long[] Steps(IEnumerable<(string Tag, long Step, float Value)> scalars, string tag) =>
        scalars.Where(s => s.Tag == tag).Select(s => s.Step).ToArray();
}
