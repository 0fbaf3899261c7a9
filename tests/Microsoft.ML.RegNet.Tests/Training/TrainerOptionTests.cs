using Microsoft.ML;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>
/// Options no other test exercises, observed through Fit's public results. The optimizer tests use a learning rate so
/// small that gradients move weights by about 1e-7 while weight decay moves them by 10–50 % a step, so the trained
/// weights follow the decay recurrence alone and can be computed by hand.
/// </summary>
[TestClass]
public sealed class TrainerOptionTests
{
    private static readonly RegNetSpec Tiny = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8, name: "tiny");

    [TestMethod]
    public void LabelSmoothingBoundsTheTrainingLossBelowByTheSmoothedTargetEntropy()
    {
        const double epsilon = 0.4;
        // Two classes: targets 1 − ε + ε/2 = 0.8 and ε/2 = 0.2; cross-entropy against them is at least their entropy.
        double entropy = -(0.8 * Math.Log(0.8) + 0.2 * Math.Log(0.2));
        var metrics = new List<RegNetTrainingMetrics>();
        var options = Options(seed: 5);
        options.LabelSmoothing = epsilon;
        options.MaxEpochs = 4;
        options.LearningRate = 3e-3;
        options.Schedule = LearningRateScheduleKind.HalfCosine;
        options.WeightDecay = 0;
        options.MetricsCallback = metrics.Add;
        using var data = new TinyImageData(perClass: 16);
        data.Fit(options).Dispose();

        var steps = metrics.Where(m => m.Phase == MetricsPhase.TrainSteps).ToList();
        Assert.IsNotEmpty(steps);
        foreach (var m in steps) Assert.IsGreaterThanOrEqualTo(entropy - 1e-4, m.Loss, m.ToString());
        // It did learn (ln 2 ≈ 0.693 is the untrained loss), so the bound is what stopped the loss, not the training.
        Assert.IsLessThan(entropy + 0.1, metrics.Last(m => m.Phase == MetricsPhase.TrainEpoch).Loss);
    }

    [TestMethod]
    [DataRow(0.0, false)]
    [DataRow(0.9, false)]
    [DataRow(0.9, true)]
    public void SgdWithCoupledL2FollowsTorchSgdMomentumSteps(double momentum, bool nesterov)
    {
        const double lr = 1e-7, wd = 1e6; // lr·wd = 0.1
        var (initial, _) = Train(o => { o.Optimizer = OptimizerKind.Sgd; o.LearningRate = lr; o.WeightDecay = 0; });
        var (trained, steps) = Train(o =>
        {
            o.Optimizer = OptimizerKind.Sgd; o.Momentum = momentum; o.Nesterov = nesterov; o.LearningRate = lr;
            o.WeightDecay = wd; o.WeightDecaySemantics = WeightDecaySemantics.CoupledL2;
        });

        // torch.optim.SGD on a gradient g = wd·p: buffer b ← g on the first step, else μ·b + g;
        // step direction d = g + μ·b with Nesterov, else b; p ← p − lr·d. Linear, so one scalar gives the ratio.
        double p = 1, buffer = 0;
        for (int t = 0; t < steps; t++)
        {
            double g = wd * p;
            buffer = t == 0 ? g : momentum * buffer + g;
            p -= lr * (nesterov ? g + momentum * buffer : buffer);
        }
        Assert.IsGreaterThanOrEqualTo(2, steps);
        foreach (var (name, value) in trained.Where(kv => kv.Value.dim() > 1))
            Assert.AreEqual(p, Ratio(value, initial[name]), 1e-4, name);
    }

    [TestMethod]
    public void ExcludingNormAndBiasLeavesOneDimensionalParametersUndecayed()
    {
        const double wd = 0.5; // DecoupledConstant: p ← (1 − wd)·p every step
        void Setup(RegNetTrainer.Options o)
        {
            o.Optimizer = OptimizerKind.AdamW; o.LearningRate = 1e-9;
            o.WeightDecay = wd; o.WeightDecaySemantics = WeightDecaySemantics.DecoupledConstant;
        }
        var (initial, _) = Train(o => { Setup(o); o.WeightDecay = 0; });
        var (excluded, steps) = Train(o => { Setup(o); o.ExcludeNormAndBiasFromWeightDecay = true; });
        var (included, _) = Train(Setup);

        double factor = Math.Pow(1 - wd, steps);
        var bnWeights = initial.Keys.Where(k => k.EndsWith(".bn.weight", StringComparison.Ordinal)).ToList();
        Assert.IsNotEmpty(bnWeights);
        // BatchNorm weights start at 1; biases start at 0, where a ratio says nothing.
        foreach (var name in bnWeights)
        {
            Assert.AreEqual(1, Ratio(excluded[name], initial[name]), 1e-4, $"{name} excluded");
            Assert.AreEqual(factor, Ratio(included[name], initial[name]), 1e-4, $"{name} included");
        }
        foreach (var (name, value) in excluded.Where(kv => kv.Value.dim() > 1))
            Assert.AreEqual(factor, Ratio(value, initial[name]), 1e-4, $"{name} is still decayed");
    }

    [TestMethod]
    public void CheckpointEveryNStepsWritesTheLatestCheckpointAtThoseStepsAndAResumeFromOneContinuesAfterIt()
    {
        // 24 rows in batches of 4: 6 steps an epoch. With N = 4 over two epochs the latest checkpoint is written after
        // steps 4 and 8 (mid-epoch) and 6 and 12 (epoch ends; step 12 is an epoch's last step, so only the epoch-end one).
        using var data = new TinyImageData(perClass: 12);
        string workspace = Directory.CreateTempSubdirectory("regnet-every-n-steps-").FullName;
        try
        {
            string runs = Path.Combine(workspace, "runs"), step4 = Path.Combine(workspace, "step4.ckpt");
            var seen = new List<(long Step, long Checkpoint)>();
            var options = Options(seed: 7);
            options.MaxEpochs = 2;
            options.WorkspacePath = workspace;
            options.CheckpointEveryNSteps = 4;
            options.MetricsCallback = m =>
            {
                if (m.Phase != MetricsPhase.TrainSteps) return;
                string? latest = Directory.Exists(runs)
                    ? Directory.GetFiles(runs, RunDirectory.LatestCheckpointName, SearchOption.AllDirectories).SingleOrDefault() : null;
                long at = latest is null ? 0 : Checkpoint.ReadHeader(latest).State.GlobalStep;
                seen.Add((m.Step, at));
                if (at == 4 && !File.Exists(step4)) File.Copy(latest!, step4);
            };
            using var reference = data.Fit(options);
            // A step is reported before its checkpoint is written, so each report sees the checkpoints of earlier steps.
            CollectionAssert.AreEqual(new long[] { 0, 0, 0, 0, 4, 4, 6, 6, 8, 8, 8, 8 }, seen.Select(s => s.Checkpoint).ToArray(), string.Join(" ", seen));
            var header = Checkpoint.ReadHeader(step4);
            Assert.AreEqual((0, 4), (header.State.Epoch, header.State.BatchInEpoch));

            var resumedSteps = new List<long>();
            var resumed = Options(seed: 7);
            resumed.MaxEpochs = 2;
            resumed.ResumeFrom = step4;
            resumed.MetricsCallback = m => { if (m.Phase == MetricsPhase.TrainSteps) resumedSteps.Add(m.Step); };
            using var continued = data.Fit(resumed);
            CollectionAssert.AreEqual(new long[] { 5, 6, 7, 8, 9, 10, 11, 12 }, resumedSteps.ToArray());
            TinyImageData.AssertSameWeights(reference.Model, continued.Model);
        }
        finally
        {
            Directory.Delete(workspace, true);
        }
    }

    private static double Ratio(Tensor a, Tensor b) => (a.norm() / b.norm()).item<float>();

    private static RegNetTrainer.Options Options(int seed) => new()
    {
        Spec = Tiny, ImageSize = 32, BatchSize = 4, MaxEpochs = 1, WorkerThreads = 2, Seed = seed, LogEveryNSteps = 1,
        Augmentation = AugmentationOptions.Training(0.5) with { LightingStd = 0 }, Schedule = LearningRateScheduleKind.Constant,
    };

    // Same seed, same data: the runs start from the same weights and see the same batches.
    private static (Dictionary<string, Tensor> Weights, long Steps) Train(Action<RegNetTrainer.Options> configure)
    {
        var options = Options(seed: 9);
        var metrics = new List<RegNetTrainingMetrics>();
        options.MetricsCallback = metrics.Add;
        configure(options);
        using var data = new TinyImageData(perClass: 6);
        using var transformer = data.Fit(options);
        var weights = transformer.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        return (weights, metrics.Where(m => m.Phase == MetricsPhase.TrainSteps).Max(m => m.Step));
    }
}
