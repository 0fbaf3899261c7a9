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
    private sealed record GroupedSession(TrainingSession Session, RegNetModel Model, TorchSharp.Modules.OptimizerHelper Optimizer) : IDisposable
    {
        public void Dispose()
        {
            Session.Dispose();
            Optimizer.Dispose();
            Model.Dispose();
        }
    }

    private static GroupedSession CreateGrouped(
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
        return new GroupedSession(session, model, optimizer);
    }

    // Steps both sessions through the same batches; the losses must agree at every step, then every parameter bit for bit.
    private static void StepAlike(GroupedSession a, GroupedSession b, int steps, int seed = 9)
    {
        using var data = new Generator((ulong)seed);
        for (int step = 0; step < steps; step++)
        {
            using var images = randn(new long[] { 4, 3, 32, 32 }, generator: data);
            using var first = new ImageBatch(step, images.clone(), tensor(new long[] { 0, 1, 1, 0 }), new long[] { 0, 1, 2, 3 }, Array.Empty<BadRow>());
            using var second = new ImageBatch(step, images.clone(), tensor(new long[] { 0, 1, 1, 0 }), new long[] { 0, 1, 2, 3 }, Array.Empty<BadRow>());
            Assert.AreEqual(a.Session.Step(first).Loss, b.Session.Step(second).Loss, $"step {step}: the losses differ");
        }
        var expected = b.Model.parameters().ToList();
        var actual = a.Model.parameters().ToList();
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
        using var flat = CreateGrouped(adam: true, semantics);
        using var reference = CreateGrouped(adam: true, semantics);
        reference.Session.ReduceGradientsWith(() => { });
        StepAlike(flat, reference, steps: 3);
        Assert.IsTrue(flat.Session.StepsOverFlatBuffers, "Adam without a gradient reduction must step over flat buffers");
        Assert.IsFalse(reference.Session.StepsOverFlatBuffers);
        var flatState = flat.Optimizer.state_dict().State.Cast<TorchSharp.Modules.Adam.State>().ToList();
        var referenceState = reference.Optimizer.state_dict().State.Cast<TorchSharp.Modules.Adam.State>().ToList();
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
        using var flat = CreateGrouped(adam: true, WeightDecaySemantics.Decoupled, freezeStem: true);
        using var reference = CreateGrouped(adam: true, WeightDecaySemantics.Decoupled, freezeStem: true);
        reference.Session.ReduceGradientsWith(() => { });
        var stemBefore = flat.Model.Stem.parameters().Select(p => p.detach().clone()).ToList();
        StepAlike(flat, reference, steps: 2);
        Assert.IsTrue(flat.Session.StepsOverFlatBuffers);
        var stemAfter = flat.Model.Stem.parameters().ToList();
        for (int i = 0; i < stemBefore.Count; i++)
            Assert.IsTrue(stemBefore[i].eq(stemAfter[i]).all().item<bool>(), $"frozen stem parameter {i} changed");
        // The stem's parameters come first in the optimizer (its first group is the stem and the first stage).
        int stem = stemBefore.Count;
        var steps = flat.Optimizer.state_dict().State.Cast<TorchSharp.Modules.Adam.State>().Select(st => st.step).ToList();
        CollectionAssert.AreEqual(Enumerable.Repeat(0L, stem).Concat(Enumerable.Repeat(2L, steps.Count - stem)).ToList(), steps,
            "Adam's step counts: 0 for the frozen stem, 2 for the rest");
        foreach (var model in new[] { flat.Model, reference.Model })
            foreach (var p in model.Stem.parameters()) p.requires_grad = true;
        flat.Session.Unfreeze();
        reference.Session.Unfreeze();
        StepAlike(flat, reference, steps: 2, seed: 10);
        Assert.AreEqual(2L, flat.Optimizer.state_dict().State.Cast<TorchSharp.Modules.Adam.State>().First().step, "the unfrozen stem's step count");
        Assert.IsFalse(stemBefore[0].eq(flat.Model.Stem.parameters().First()).all().item<bool>(), "the unfrozen stem must train");
    }

    [TestMethod]
    public void DroppingGradientsTrainsExactlyAsZeroingThem()
    {
        // SGD with momentum: each step drops the gradients (backward writes them afresh); with a gradient reduction they are
        // zeroed in place and backward adds to zeros. A gradient kept from the step before, or one lost, would show.
        using var dropping = CreateGrouped(adam: false, WeightDecaySemantics.CoupledL2);
        using var zeroing = CreateGrouped(adam: false, WeightDecaySemantics.CoupledL2);
        int reductions = 0;
        zeroing.Session.ReduceGradientsWith(() => reductions++);
        StepAlike(dropping, zeroing, steps: 3);
        Assert.AreEqual(3, reductions);
        Assert.IsTrue(dropping.Model.parameters().Any(p => p.grad is not null), "gradients of the last step must be there (the optimizer used them)");
    }
}
