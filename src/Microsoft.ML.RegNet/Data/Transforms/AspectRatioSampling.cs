using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet;

/// <summary>How a random-resized crop draws its aspect ratio (width/height) between the bounds.</summary>
public enum AspectRatioSampling
{
    /// <summary>Linear uniform, as the Keras RegNets' trainer and pycls do (followed by a 50% width/height swap).</summary>
    Uniform,

    /// <summary>Uniform in log space, as torchvision and timm do (the swap keeps it symmetric).</summary>
    LogUniform,
}
