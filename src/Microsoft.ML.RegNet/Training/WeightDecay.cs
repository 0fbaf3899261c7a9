using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Training;

/// <summary>What "weight decay" means; the choice changes results a lot (training_recipe.md §1.11).</summary>
public enum WeightDecaySemantics
{
    /// <summary>PyTorch AdamW: p ← p − lr·wd·p before the update (decay follows the schedule).</summary>
    Decoupled,
    /// <summary>TensorFlow Addons AdamW, what the Keras RegNets used: p ← p − wd·p every step, not scaled by the learning rate.</summary>
    DecoupledConstant,
    /// <summary>Classic L2: wd·p added to the gradient (pycls SGD).</summary>
    CoupledL2,
}

/// <summary>Applies weight decay to parameter groups, outside the optimizer so every semantics is available for every optimizer.</summary>
internal sealed class WeightDecay
{
    private readonly Parameter[] _decayed;

    public WeightDecay(IEnumerable<Parameter> decayed, double rate, WeightDecaySemantics semantics)
    {
        _decayed = decayed.ToArray();
        Rate = rate;
        Semantics = semantics;
    }

    public double Rate { get; }
    public WeightDecaySemantics Semantics { get; }

    /// <summary>After backward, before the optimizer step.</summary>
    public void Apply(double learningRate)
    {
        if (Rate == 0) return;
        using var noGrad = no_grad();
        foreach (var p in _decayed)
        {
            if (!p.requires_grad) continue;
            switch (Semantics)
            {
                case WeightDecaySemantics.Decoupled:
                    p.mul_(1 - learningRate * Rate);
                    break;
                case WeightDecaySemantics.DecoupledConstant:
                    p.mul_(1 - Rate);
                    break;
                case WeightDecaySemantics.CoupledL2:
                    p.grad?.add_(p, alpha: Rate);
                    break;
            }
        }
    }
}
