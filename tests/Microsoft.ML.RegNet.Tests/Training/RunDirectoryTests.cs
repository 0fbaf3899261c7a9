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

    [TestMethod]
    public void RunFolderOpenedSeesTheNewFolderBeforeTheFirstStepAndTheReopenedOneOnResume()
    {
        using var data = new TinyImageData(perClass: 4);
        string workspace = Directory.CreateTempSubdirectory("regnet-opened-").FullName;
        try
        {
            var seen = new List<(string Folder, bool HasConfig, bool HasCheckpoint)>();
            void Opened(string folder) => seen.Add((folder, File.Exists(Path.Combine(folder, "config.json")),
                File.Exists(Path.Combine(folder, "checkpoints", RunDirectory.LatestCheckpointName))));
            var first = TinyOptions(epochs: 1);
            (first.WorkspacePath, first.RunFolderOpened) = (workspace, Opened);
            using (var trained = data.Fit(first))
                CollectionAssert.AreEqual(new[] { (trained.RunPath!, true, false) }, seen, "once, with config.json and before any checkpoint");

            var resumed = TinyOptions(epochs: 2);
            (resumed.ResumeFrom, resumed.RunFolderOpened) = (seen[0].Folder, Opened);
            data.Fit(resumed).Dispose();
            Assert.HasCount(2, seen);
            Assert.AreEqual(seen[0].Folder, seen[1].Folder, "a resume reports the run folder it continues");
        }
        finally
        {
            Directory.Delete(workspace, recursive: true);
        }
    }

    private static long[] Steps(IEnumerable<(string Tag, long Step, float Value)> scalars, string tag) =>
        scalars.Where(s => s.Tag == tag).Select(s => s.Step).ToArray();
}
