using Microsoft.ML.RegNet.Data.Mixing;

namespace Microsoft.ML.RegNet;

/// <summary>Which image each sample is mixed with.</summary>
public enum MixupPartner
{
    /// <summary>Sample i with sample N−1−i (the batch reversed), as the Keras RegNets' trainer and timm's "batch" mode do.</summary>
    Reversed,

    /// <summary>A random permutation of the batch, as pycls does.</summary>
    RandomPermutation,
}

/// <summary>
/// Batch-level Mixup / CutMix and label smoothing (timm <c>Mixup</c>-style). With both alphas 0 only label smoothing
/// applies. One λ is drawn per batch, as in the Keras RegNets' trainer, pycls and timm's batch mode. Training only.
/// </summary>
public sealed record MixingOptions
{
    /// <summary>Mixup Beta(α, α) parameter; 0 disables Mixup (the Keras RegNets' trainer: 0.2–0.4 by model size).</summary>
    public double MixupAlpha { get; init; }

    /// <summary>CutMix Beta(α, α) parameter; 0 disables CutMix (timm commonly 1.0).</summary>
    public double CutMixAlpha { get; init; }

    /// <summary>Chance that a batch is mixed at all (1).</summary>
    public double Probability { get; init; } = 1.0;

    /// <summary>When both are enabled, the chance of CutMix instead of Mixup (0.5).</summary>
    public double SwitchProbability { get; init; } = 0.5;

    /// <summary>Partner choice (reversed batch by default, as the Keras RegNets' trainer).</summary>
    public MixupPartner Partner { get; init; } = MixupPartner.Reversed;

    /// <summary>CutMix: recompute λ from the clipped box area (timm's <c>correct_lam</c>; true).</summary>
    public bool CorrectCutMixLambda { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (!(MixupAlpha >= 0 && double.IsFinite(MixupAlpha))) throw new ArgumentOutOfRangeException(nameof(MixupAlpha), MixupAlpha, "Must be finite and ≥ 0.");
        if (!(CutMixAlpha >= 0 && double.IsFinite(CutMixAlpha))) throw new ArgumentOutOfRangeException(nameof(CutMixAlpha), CutMixAlpha, "Must be finite and ≥ 0.");
        if (!(Probability >= 0 && Probability <= 1)) throw new ArgumentOutOfRangeException(nameof(Probability), Probability, "Must be in [0, 1].");
        if (!(SwitchProbability >= 0 && SwitchProbability <= 1)) throw new ArgumentOutOfRangeException(nameof(SwitchProbability), SwitchProbability, "Must be in [0, 1].");
    }
}
