using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Training;

/// <summary>Applies weight decay to parameter groups, outside the optimizer so every semantics is available for every optimizer.</summary>
internal sealed class WeightDecay
{
    private readonly (Parameter Parameter, double LearningRateScale)[] _decayed;
    private readonly HashSet<IntPtr> _decayedHandles;

    public WeightDecay(IEnumerable<Parameter> decayed, double rate, WeightDecaySemantics semantics)
        : this(decayed.Select(p => (p, 1.0)), rate, semantics)
    {
    }

    // Each parameter comes with its group's learning-rate multiplier (layer-wise decay): decoupled decay follows the
    // parameter's own learning rate, as AdamW's does per parameter group.
    public WeightDecay(IEnumerable<(Parameter Parameter, double LearningRateScale)> decayed, double rate, WeightDecaySemantics semantics)
    {
        _decayed = decayed.ToArray();
        _decayedHandles = _decayed.Select(d => d.Parameter.Handle).ToHashSet();
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
        foreach (var (p, scale) in _decayed)
        {
            if (!p.requires_grad) continue;
            // Only the coupled form reads the gradient (a native call per parameter otherwise saved).
            Decay(p, Semantics == WeightDecaySemantics.CoupledL2 ? p.grad : null, learningRate * scale);
        }
    }

    /// <summary>True when <paramref name="parameter"/> is decayed (a nonzero rate and a parameter in the decayed set).</summary>
    public bool Decays(Parameter parameter) => Rate != 0 && _decayedHandles.Contains(parameter.Handle);

    /// <summary><see cref="Apply"/> for decayed parameters given as one tensor (a slice of a flat buffer) with their
    /// gradients, trained at <paramref name="groupLearningRate"/> (the scheduled rate times their group's multiplier).</summary>
    public void ApplyTo(Tensor parameters, Tensor gradients, double groupLearningRate)
    {
        if (Rate == 0) return;
        using var noGrad = no_grad();
        Decay(parameters, gradients, groupLearningRate);
    }

    private void Decay(Tensor parameters, Tensor? gradients, double learningRate)
    {
        switch (Semantics)
        {
            case WeightDecaySemantics.Decoupled:
                parameters.mul_(1 - learningRate * Rate);
                break;
            case WeightDecaySemantics.DecoupledConstant:
                parameters.mul_(1 - Rate);
                break;
            case WeightDecaySemantics.CoupledL2:
                gradients?.add_(parameters, alpha: Rate);
                break;
        }
    }
}
