using Microsoft.ML.RegNet.Training;
using TorchSharp;

namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>Reading back what TorchSharp's SummaryWriter wrote, across files, and past a record cut short.</summary>
[TestClass]
public sealed class TensorBoardEventsTests
{
    [TestMethod]
    public void ReadsEveryScalarOfEveryEventFileAndTheLastStepOfEachTag()
    {
        string folder = Directory.CreateTempSubdirectory("regnet-tfevents-").FullName;
        try
        {
            var first = torch.utils.tensorboard.SummaryWriter(folder, createRunName: false);
            first.add_scalar("train/loss", 1.5f, 3);
            first.add_scalar("train/loss", 0.5f, 7);
            first.add_scalar("learning_rate", 0.1f, 2);
            Thread.Sleep(5); // the second writer's file name (creation ticks) sorts after the first's
            var second = torch.utils.tensorboard.SummaryWriter(folder, createRunName: false);
            second.add_scalar("train/loss", 0.25f, 9);
            var files = Directory.GetFiles(folder, "events.out.tfevents.*").Order(StringComparer.Ordinal).ToArray();
            Assert.HasCount(2, files);
            // A record cut short by a killed process ends its file; what precedes it still reads.
            File.AppendAllText(files[1], "cut");

            var scalars = TensorBoardEvents.ReadScalars(folder).ToList();
            CollectionAssert.AreEqual(
                new[] { ("train/loss", 3L, 1.5f), ("train/loss", 7L, 0.5f), ("learning_rate", 2L, 0.1f), ("train/loss", 9L, 0.25f) },
                scalars.Select(s => (s.Tag, s.Step, s.Value)).ToArray());
            var last = TensorBoardEvents.LastSteps(folder);
            Assert.AreEqual(9L, last["train/loss"]);
            Assert.AreEqual(2L, last["learning_rate"]);
            Assert.IsEmpty(TensorBoardEvents.LastSteps(Path.Combine(folder, "absent")));
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }
}
