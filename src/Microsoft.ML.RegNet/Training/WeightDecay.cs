using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Training;

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
