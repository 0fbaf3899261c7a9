using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Data.Mixing;

/// <summary>
/// The parameters of one batch's mixing, drawn before touching any tensor: λ (weight of the original sample),
/// the partner index of each sample, and for CutMix the pasted box (rows [Top, Bottom), columns [Left, Right)).
/// </summary>
internal sealed record MixingDecision(double Lambda, bool IsCutMix, long[] Partners, int Top = 0, int Bottom = 0, int Left = 0, int Right = 0)
{
    /// <summary>No mixing (λ = 1).</summary>
    public bool IsIdentity => Lambda >= 1.0 && !IsCutMix;
}
