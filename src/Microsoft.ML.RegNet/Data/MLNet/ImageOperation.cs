using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Data.MLNet;

/// <summary>One per-image operation behind an ML.NET image transform: a name, the output size (0 = unchanged) and the execution.</summary>
internal sealed record ImageOperation(string Name, int OutputWidth, int OutputHeight, bool IsRandom,
    Func<RgbImage, AugmentationRandom, RgbImage> Apply);
