using Microsoft.ML.RegNet.Runtime;
using Microsoft.ML.RegNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>Both decoupled semantics on a toy problem, against PyTorch's AdamW (TorchSharp's own implementation) and the TFA formula.</summary>
[TestClass]
public sealed class WeightDecayTests
{
    [TestMethod]
    public void DecoupledMatchesTorchAdamW()
    {
        TorchRuntime.Configure();
        using var reference = new TorchSharp.Modules.Parameter(tensor(new float[] { 1, -2, 3 }));
        using var ours = new TorchSharp.Modules.Parameter(tensor(new float[] { 1, -2, 3 }));
        using var adamW = optim.AdamW(new[] { reference }, lr: 0.1, weight_decay: 0.5);
        using var adam = optim.Adam(new[] { ours }, 0.1);
        var decay = new WeightDecay(new[] { ours }, 0.5, WeightDecaySemantics.Decoupled);
        for (int step = 0; step < 5; step++)
        {
            adamW.zero_grad(); (reference * reference).sum().backward(); adamW.step();
            adam.zero_grad(); (ours * ours).sum().backward(); decay.Apply(0.1); adam.step();
        }
        CollectionAssert.AreEqual(reference.data<float>().ToArray(), ours.data<float>().ToArray(), new FloatComparer(1e-6f));
    }

    [TestMethod]
    public void DecoupledConstantShrinksByRateEveryStepRegardlessOfLearningRate()
    {
        TorchRuntime.Configure();
        using var p = new TorchSharp.Modules.Parameter(tensor(new float[] { 2f }));
        var decay = new WeightDecay(new[] { p }, 0.01, WeightDecaySemantics.DecoupledConstant);
        decay.Apply(learningRate: 1e-6);
        decay.Apply(learningRate: 10);
        Assert.AreEqual(2f * 0.99f * 0.99f, p.item<float>(), 1e-6f);
    }

    private sealed class FloatComparer(float tolerance) : System.Collections.IComparer
    {
        public int Compare(object? x, object? y) => Math.Abs((float)x! - (float)y!) <= tolerance ? 0 : 1;
    }
}
