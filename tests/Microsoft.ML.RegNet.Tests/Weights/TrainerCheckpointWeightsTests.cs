using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Tests.Training;
using Microsoft.ML.RegNet.Training;
using Microsoft.ML.RegNet.Weights;

namespace Microsoft.ML.RegNet.Tests.Weights;

/// <summary>A checkpoint of the trainer (<c>.ckpt</c>, format 2) read through <see cref="RegNetWeights"/>: routed to the
/// checkpoint reader (not the PyTorch one the extension suggests), verified, with its run's preprocessing and classes.</summary>
[TestClass]
public sealed class TrainerCheckpointWeightsTests
{
    private static readonly RegNetSpec Tiny = TinyImageData.TinySpec;

    [TestMethod]
    public void ATrainerCheckpointLoadsThroughRegNetWeightsWithItsRunsPreprocessingAndClasses()
    {
        using var data = new TinyImageData(perClass: 4);
        string workspace = Directory.CreateTempSubdirectory("regnet-ckpt-weights-").FullName;
        try
        {
            var options = new RegNetTrainer.Options
            {
                Spec = Tiny, ImageSize = 32, BatchSize = 4, MaxEpochs = 1, WorkerThreads = 2, Seed = 3, WorkspacePath = workspace,
                Normalization = ImageNormalization.UnitScale, CropFraction = 0.75,
                Augmentation = AugmentationOptions.Training(0.5) with { LightingStd = 0 },
            };
            using var trained = data.Fit(options);
            string checkpoint = Directory.GetFiles(workspace, RunDirectory.LatestCheckpointName, SearchOption.AllDirectories).Single();

            Assert.AreEqual(WeightFormat.RegNetCheckpoint, WeightFormatDetector.Detect(checkpoint));
            using var model = new RegNetModel(Tiny, 2);
            var report = RegNetWeights.Load(model, checkpoint);
            Assert.AreEqual(WeightFormat.RegNetCheckpoint, report.Format);
            Assert.IsTrue(report.Tensors.IsComplete, report.ToString());
            Assert.AreEqual(ClassifierStatus.Loaded, report.Classifier);
            CollectionAssert.AreEqual(new[] { "red", "blue" }, report.ClassNames.ToArray());
            Assert.AreEqual(32, report.Preprocessing.ImageSize);
            Assert.AreEqual(0.75, report.Preprocessing.CropFraction);
            Assert.AreEqual(ImageNormalization.UnitScale.Scale, report.Preprocessing.Normalization.Scale);
            CollectionAssert.AreEqual(ImageNormalization.UnitScale.Mean, report.Preprocessing.Normalization.Mean);
            TinyImageData.AssertSameWeights(trained.Model, model);

            var loaded = RegNetWeights.LoadModel(checkpoint);
            using (loaded.Model)
            {
                Assert.AreEqual(2, loaded.Model.NumberOfClasses);
                TinyImageData.AssertSameWeights(trained.Model, loaded.Model);
            }

            // Verified before anything is copied: one changed byte is refused as damaged.
            var bytes = File.ReadAllBytes(checkpoint);
            bytes[bytes.Length / 2] ^= 1;
            string damaged = Path.Combine(workspace, "damaged.ckpt");
            File.WriteAllBytes(damaged, bytes);
            using var other = new RegNetModel(Tiny, 2);
            var e = Assert.ThrowsExactly<InvalidDataException>(() => RegNetWeights.Load(other, damaged));
            StringAssert.Contains(e.Message, "SHA-256");
        }
        finally
        {
            Directory.Delete(workspace, true);
        }
    }
}
