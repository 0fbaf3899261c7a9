using Microsoft.ML.RegNet.Data.Mixing;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Training;

[TestClass]
public sealed class TrainingSessionTests
{
    private static readonly RegNetSpec Tiny = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8, name: "tiny");

    private static (TrainingSession, RegNetModel, TorchSharp.Modules.OptimizerHelper) Create()
    {
        var model = new RegNetModel(Tiny, 2);
        var parameters = model.parameters().ToList();
        var optimizer = optim.Adam(parameters, 1e-3);
        var session = new TrainingSession(model, optimizer, new WeightDecay(parameters, 0, WeightDecaySemantics.Decoupled),
            new LearningRateSchedule(1e-3, 2, 4), new BatchMixer(new MixingOptions(), 2), seed: 1,
            frozen: Array.Empty<nn.Module>(), new TrainingState(0, 0, 0, double.NegativeInfinity, 0, Tiny.ToString(), 2));
        return (session, model, optimizer);
    }

    private static ImageBatch Batch(float fill = float.NaN)
    {
        var images = float.IsNaN(fill) ? randn(4, 3, 32, 32) : full(new long[] { 4, 3, 32, 32 }, fill);
        return new ImageBatch(0, images, tensor(new long[] { 0, 1, 0, 1 }), new long[] { 0, 1, 2, 3 }, Array.Empty<BadRow>());
    }

    [TestMethod]
    public void StepTrainsOneBatchAndAdvancesTheState()
    {
        var (session, model, optimizer) = Create();
        using var _ = model;
        using var __ = optimizer;
        var before = model.Classifier!.weight!.detach().clone();
        using var batch = Batch();
        var result = session.Step(batch);
        Assert.IsTrue(result.IsFinite);
        Assert.AreEqual(4, result.Images);
        Assert.AreEqual(1e-3, result.LearningRate, 1e-12);
        Assert.AreEqual((0, 1, 1L), (session.State.Epoch, session.State.BatchInEpoch, session.State.GlobalStep));
        Assert.IsFalse(before.eq(model.Classifier!.weight!).all().item<bool>(), "the step must update the weights");
    }

    [TestMethod]
    public void ANonFiniteLossIsReturnedBeforeTheUpdate()
    {
        var (session, model, optimizer) = Create();
        using var _ = model;
        using var __ = optimizer;
        var before = model.Classifier!.weight!.detach().clone();
        using var batch = Batch(float.PositiveInfinity);
        var result = session.Step(batch);
        Assert.IsFalse(result.IsFinite);
        Assert.AreEqual(0L, session.State.GlobalStep);
        Assert.IsTrue(before.eq(model.Classifier!.weight!).all().item<bool>(), "weights must not change on a non-finite loss");
    }

    // Two parameter groups (the stem and first stage at half the rate, the rest at the full rate), decay on weights only,
    // and the given optimizer: what the trainer builds with LayerDecay and ExcludeNormAndBiasFromWeightDecay.
    private static (TrainingSession Session, RegNetModel Model, TorchSharp.Modules.OptimizerHelper Optimizer) CreateGrouped(
        bool adam, WeightDecaySemantics semantics, bool freezeStem = false)
    {
        using var generator = new Generator(5);
        var model = new RegNetModel(Tiny, 2, generator: generator);
        var slow = model.Stem.parameters().Concat(model.Stages[0].parameters()).ToList();
        var slowHandles = slow.Select(p => p.Handle).ToHashSet();
        var fast = model.parameters().Where(p => !slowHandles.Contains(p.Handle)).ToList();
        if (freezeStem)
            foreach (var p in model.Stem.parameters()) p.requires_grad = false;
        var scales = new[] { 0.5, 1.0 };
        TorchSharp.Modules.OptimizerHelper optimizer = adam
            ? optim.Adam(new[] { new TorchSharp.Modules.Adam.ParamGroup(slow, 1e-3 * 0.5, 0.9, 0.999, 1e-8), new TorchSharp.Modules.Adam.ParamGroup(fast, 1e-3, 0.9, 0.999, 1e-8) }, 1e-3)
            : optim.SGD(new[] { new TorchSharp.Modules.SGD.ParamGroup(slow, 1e-3 * 0.5, 0.9), new TorchSharp.Modules.SGD.ParamGroup(fast, 1e-3, 0.9) }, 1e-3, 0.9);
        var decayed = slow.Select(p => (p, 0.5)).Concat(fast.Select(p => (p, 1.0))).Where(x => x.p.dim() > 1);
        var session = new TrainingSession(model, optimizer, new WeightDecay(decayed, 0.05, semantics),
            new LearningRateSchedule(1e-3, 2, 4), new BatchMixer(new MixingOptions(), 2), seed: 1,
            frozen: Array.Empty<nn.Module>(), new TrainingState(0, 0, 0, double.NegativeInfinity, 0, Tiny.ToString(), 2), learningRateScales: scales);
        return (session, model, optimizer);
    }

    // Steps both sessions through the same batches; the losses must agree at every step, then every parameter bit for bit.
    private static void StepAlike(TrainingSession a, RegNetModel aModel, TrainingSession b, RegNetModel bModel, int steps, int seed = 9)
    {
        using var data = new Generator((ulong)seed);
        for (int step = 0; step < steps; step++)
        {
            using var images = randn(new long[] { 4, 3, 32, 32 }, generator: data);
            using var first = new ImageBatch(step, images.clone(), tensor(new long[] { 0, 1, 1, 0 }), new long[] { 0, 1, 2, 3 }, Array.Empty<BadRow>());
            using var second = new ImageBatch(step, images.clone(), tensor(new long[] { 0, 1, 1, 0 }), new long[] { 0, 1, 2, 3 }, Array.Empty<BadRow>());
            Assert.AreEqual(a.Step(first).Loss, b.Step(second).Loss, $"step {step}: the losses differ");
        }
        var expected = bModel.parameters().ToList();
        var actual = aModel.parameters().ToList();
        for (int i = 0; i < expected.Count; i++)
            Assert.IsTrue(expected[i].eq(actual[i]).all().item<bool>(), $"parameter {i} differs after {steps} steps");
    }

    [TestMethod]
    [DataRow(WeightDecaySemantics.Decoupled)]
    [DataRow(WeightDecaySemantics.DecoupledConstant)]
    [DataRow(WeightDecaySemantics.CoupledL2)]
    public void TheFlatAdamStepTrainsExactlyAsTorchSharpsAdam(WeightDecaySemantics semantics)
    {
        // A session without a gradient reduction steps Adam over flat buffers; one with a (do-nothing) reduction keeps
        // TorchSharp's Adam and the per-parameter decay. Two groups at different rates, decayed and undecayed parameters.
        var (flat, flatModel, flatOptimizer) = CreateGrouped(adam: true, semantics);
        var (reference, referenceModel, referenceOptimizer) = CreateGrouped(adam: true, semantics);
        using var _ = flatModel;
        using var __ = referenceModel;
        using var ___ = flatOptimizer;
        using var ____ = referenceOptimizer;
        using var _____ = flat;
        reference.ReduceGradientsWith(() => { });
        StepAlike(flat, flatModel, reference, referenceModel, steps: 3);
        Assert.IsTrue(flat.StepsOverFlatBuffers, "Adam without a gradient reduction must step over flat buffers");
        Assert.IsFalse(reference.StepsOverFlatBuffers);
        var flatState = flatOptimizer.state_dict().State.Cast<TorchSharp.Modules.Adam.State>().ToList();
        var referenceState = referenceOptimizer.state_dict().State.Cast<TorchSharp.Modules.Adam.State>().ToList();
        for (int i = 0; i < flatState.Count; i++)
        {
            Assert.AreEqual(3L, flatState[i].step, $"state {i}: Adam's step count");
            Assert.IsTrue(flatState[i].exp_avg.eq(referenceState[i].exp_avg).all().item<bool>(), $"state {i}: first moment");
            Assert.IsTrue(flatState[i].exp_avg_sq.eq(referenceState[i].exp_avg_sq).all().item<bool>(), $"state {i}: second moment");
        }
    }

    [TestMethod]
    public void TheFlatAdamStepLeavesFrozenParametersAloneUntilTheyUnfreeze()
    {
        // The stem is in the optimizer but frozen (as with UnfreezeAfterEpochs): its weights and step counts must not move
        // while frozen, and after Unfreeze both sessions train it alike (its bias correction starting at step 1).
        var (flat, flatModel, flatOptimizer) = CreateGrouped(adam: true, WeightDecaySemantics.Decoupled, freezeStem: true);
        var (reference, referenceModel, referenceOptimizer) = CreateGrouped(adam: true, WeightDecaySemantics.Decoupled, freezeStem: true);
        using var _ = flatModel;
        using var __ = referenceModel;
        using var ___ = flatOptimizer;
        using var ____ = referenceOptimizer;
        using var _____ = flat;
        reference.ReduceGradientsWith(() => { });
        var stemBefore = flatModel.Stem.parameters().Select(p => p.detach().clone()).ToList();
        StepAlike(flat, flatModel, reference, referenceModel, steps: 2);
        Assert.IsTrue(flat.StepsOverFlatBuffers);
        var stemAfter = flatModel.Stem.parameters().ToList();
        for (int i = 0; i < stemBefore.Count; i++)
            Assert.IsTrue(stemBefore[i].eq(stemAfter[i]).all().item<bool>(), $"frozen stem parameter {i} changed");
        // The stem's parameters come first in the optimizer (its first group is the stem and the first stage).
        int stem = stemBefore.Count;
        var steps = flatOptimizer.state_dict().State.Cast<TorchSharp.Modules.Adam.State>().Select(st => st.step).ToList();
        CollectionAssert.AreEqual(Enumerable.Repeat(0L, stem).Concat(Enumerable.Repeat(2L, steps.Count - stem)).ToList(), steps,
            "Adam's step counts: 0 for the frozen stem, 2 for the rest");
        foreach (var model in new[] { flatModel, referenceModel })
            foreach (var p in model.Stem.parameters()) p.requires_grad = true;
        flat.Unfreeze();
        reference.Unfreeze();
        StepAlike(flat, flatModel, reference, referenceModel, steps: 2, seed: 10);
        Assert.AreEqual(2L, flatOptimizer.state_dict().State.Cast<TorchSharp.Modules.Adam.State>().First().step, "the unfrozen stem's step count");
        Assert.IsFalse(stemBefore[0].eq(flatModel.Stem.parameters().First()).all().item<bool>(), "the unfrozen stem must train");
    }

    [TestMethod]
    public void DroppingGradientsTrainsExactlyAsZeroingThem()
    {
        // SGD with momentum: each step drops the gradients (backward writes them afresh); with a gradient reduction they are
        // zeroed in place and backward adds to zeros. A gradient kept from the step before, or one lost, would show.
        var (dropping, droppingModel, droppingOptimizer) = CreateGrouped(adam: false, WeightDecaySemantics.CoupledL2);
        var (zeroing, zeroingModel, zeroingOptimizer) = CreateGrouped(adam: false, WeightDecaySemantics.CoupledL2);
        using var _ = droppingModel;
        using var __ = zeroingModel;
        using var ___ = droppingOptimizer;
        using var ____ = zeroingOptimizer;
        int reductions = 0;
        zeroing.ReduceGradientsWith(() => reductions++);
        StepAlike(dropping, droppingModel, zeroing, zeroingModel, steps: 3);
        Assert.AreEqual(3, reductions);
        Assert.IsTrue(droppingModel.parameters().Any(p => p.grad is not null), "gradients of the last step must be there (the optimizer used them)");
    }
}
