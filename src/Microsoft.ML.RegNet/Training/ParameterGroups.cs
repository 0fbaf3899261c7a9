using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Training;

/// <summary>Parameters that share a learning-rate multiplier in the optimizer.</summary>
internal sealed record ParameterGroup(string Name, IReadOnlyList<Parameter> Parameters, double LearningRateScale);

/// <summary>
/// The optimizer's parameter groups. Without layer-wise decay one group holds them all; with it, as timm's
/// <c>layer_decay</c> does for its depth groups, the head trains at the scheduled rate and each part closer to the input
/// at <c>decay</c> times the rate of the part after it: stage N × decay, stage N−1 × decay², …, the stem × decay^(N+1),
/// so the features that transfer best change least.
/// </summary>
internal static class ParameterGroups
{
    /// <param name="model">The network.</param>
    /// <param name="include">Which parameters the optimizer holds (frozen ones that never train are left out).</param>
    /// <param name="layerDecay">Null or 1: one group at the scheduled rate.</param>
    public static IReadOnlyList<ParameterGroup> Of(RegNetModel model, Func<Parameter, bool> include, double? layerDecay)
    {
        if (layerDecay is null or 1.0)
            return new[] { new ParameterGroup("all", model.parameters().Where(include).ToList(), 1.0) };
        var parts = new List<(string Name, nn.Module Module)> { ("stem", model.Stem) };
        parts.AddRange(model.Stages.Select((stage, i) => ($"s{i + 1}", (nn.Module)stage)));
        var inParts = new HashSet<IntPtr>();
        var groups = new List<ParameterGroup>();
        for (int i = 0; i < parts.Count; i++)
        {
            var parameters = parts[i].Module.parameters().ToList();
            foreach (var p in parameters) inParts.Add(p.Handle);
            groups.Add(new ParameterGroup(parts[i].Name, parameters.Where(include).ToList(), Math.Pow(layerDecay.Value, parts.Count - i)));
        }
        groups.Add(new ParameterGroup("head", model.parameters().Where(p => !inParts.Contains(p.Handle) && include(p)).ToList(), 1.0));
        return groups.Where(g => g.Parameters.Count > 0).ToList();
    }
}
