using Microsoft.ML.RegNet.Data.Mixing;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Training;

[TestClass]
public sealed class TrainingSessionTests
{
    private static readonly RegNetSpec Tiny = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8, name: "tiny");

    private static (TrainingSession, RegNetModel, TorchSharp.Modules.OptimizerHelper) Create(ulong? seed = null)
    {
        using var generator = seed is { } s ? new Generator(s) : null;
        var model = new RegNetModel(Tiny, 2, generator: generator);
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

    [TestMethod]
    public void DroppingGradientsTrainsExactlyAsZeroingThem()
    {
        // Each step drops the gradients (backward writes them afresh); with a gradient reduction they are zeroed in place
        // and backward adds to zeros. Both must give the same weights bit for bit after several steps: a gradient kept from
        // the step before, or one lost, would show.
        var (dropping, droppingModel, droppingOptimizer) = Create(seed: 5);
        var (zeroing, zeroingModel, zeroingOptimizer) = Create(seed: 5);
        using var _ = droppingModel;
        using var __ = zeroingModel;
        using var ___ = droppingOptimizer;
        using var ____ = zeroingOptimizer;
        int reductions = 0;
        zeroing.ReduceGradientsWith(() => reductions++);
        using var data = new Generator(9);
        for (int step = 0; step < 3; step++)
        {
            using var images = randn(new long[] { 4, 3, 32, 32 }, generator: data);
            using var a = new ImageBatch(step, images.clone(), tensor(new long[] { 0, 1, 1, 0 }), new long[] { 0, 1, 2, 3 }, Array.Empty<BadRow>());
            using var b = new ImageBatch(step, images.clone(), tensor(new long[] { 0, 1, 1, 0 }), new long[] { 0, 1, 2, 3 }, Array.Empty<BadRow>());
            Assert.AreEqual(dropping.Step(a).Loss, zeroing.Step(b).Loss, $"step {step}: the losses differ");
        }
        Assert.AreEqual(3, reductions);
        var expected = zeroingModel.parameters().ToList();
        var actual = droppingModel.parameters().ToList();
        for (int i = 0; i < expected.Count; i++)
            Assert.IsTrue(expected[i].eq(actual[i]).all().item<bool>(), $"parameter {i} differs after three steps");
        Assert.IsTrue(actual.Any(p => p.grad is not null), "gradients of the last step must be there (the optimizer used them)");
    }
}
