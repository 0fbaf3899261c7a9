using Microsoft.ML;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>Each Fit owns its random state, so Fits running at the same time do not change each other's weights.</summary>
[TestClass]
public sealed class ConcurrentFitTests
{
    private static RegNetTrainer.Options X002Options() => new()
    {
        Architecture = "X002", ImageSize = 32, BatchSize = 8, MaxEpochs = 2, LearningRate = 1e-2, WorkerThreads = 1,
        Augmentation = AugmentationOptions.Training(0.5), LogEveryNSteps = 100,
    };

    // The set-up: each Fit has its own MLContext(seed: 1) and takes its seed from it.
    private static Dictionary<string, byte[]> FitWeights(TinyImageData data)
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(data.Rows);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", nameof(TinyImageData.Row.Label))
            .Append(ml.Transforms.LoadRawImageBytes("Image", null, nameof(TinyImageData.Row.ImagePath)))
            .Append(ml.MulticlassClassification.Trainers.RegNet(X002Options()));
        var model = pipeline.Fit(view);
        using var transformer = model.LastTransformer;
        return Snapshot(transformer.Model);
    }

    private static Dictionary<string, byte[]> Snapshot(nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.contiguous().bytes.ToArray());

    private static void AssertBitIdentical(Dictionary<string, byte[]> expected, Dictionary<string, byte[]> actual, string what)
    {
        CollectionAssert.AreEquivalent(expected.Keys.ToArray(), actual.Keys.ToArray());
        var differing = expected.Keys.Where(k => !expected[k].AsSpan().SequenceEqual(actual[k])).ToList();
        Assert.IsEmpty(differing, $"{what}: {differing.Count} tensors differ, first {differing.FirstOrDefault()}");
    }

    [TestMethod]
    public void TwoFitsInParallelThreadsGiveTheSequentialRunsWeightsBitForBit()
    {
        using var data = new TinyImageData(perClass: 8, size: 32);
        var sequential = FitWeights(data);
        for (int trial = 0; trial < 2; trial++)
        {
            using var start = new Barrier(2);
            var fits = Enumerable.Range(0, 2).Select(_ => Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                return FitWeights(data);
            }, TaskCreationOptions.LongRunning)).ToArray();
            Task.WaitAll(fits);
            AssertBitIdentical(sequential, fits[0].Result, $"trial {trial}, thread 0 vs sequential");
            AssertBitIdentical(sequential, fits[1].Result, $"trial {trial}, thread 1 vs sequential");
        }
    }

    [TestMethod]
    public void InitialWeightsDependOnTheirGeneratorAloneAndTheGlobalGeneratorWouldNotIsolateThem()
    {
        var spec = RegNetSpec.FromName("X002");
        Dictionary<string, byte[]> Build(Generator? generator, bool otherThreadDraws)
        {
            manual_seed(1);
            // What a concurrent Fit does to the process-wide generator between this Fit's seeding and its initialisation.
            if (otherThreadDraws) randn(1000).Dispose();
            using var model = new RegNetModel(spec, numberOfClasses: 3, generator: generator);
            return Snapshot(model);
        }

        Dictionary<string, byte[]> WithGenerator(bool otherThreadDraws)
        {
            using var generator = new Generator(1);
            return Build(generator, otherThreadDraws);
        }

        AssertBitIdentical(WithGenerator(false), WithGenerator(true), "own generator");
        // Negative control: the old path (seed the process-wide generator, draw from it) changes with another thread's draws.
        var quiet = Build(null, otherThreadDraws: false);
        var disturbed = Build(null, otherThreadDraws: true);
        Assert.IsTrue(quiet.Keys.Any(k => !quiet[k].AsSpan().SequenceEqual(disturbed[k])), "the global generator should be disturbed");
        // The SE-free X002 has no conv bias; a Y model's SE biases come from the generator too.
        using var g1 = new Generator(7);
        using var g2 = new Generator(7);
        using var a = new RegNetModel(RegNetSpec.FromName("Y002"), 3, generator: g1);
        randn(1000).Dispose();
        using var b = new RegNetModel(RegNetSpec.FromName("Y002"), 3, generator: g2);
        AssertBitIdentical(Snapshot(a), Snapshot(b), "Y002 with SE biases");
    }
}
