namespace Microsoft.ML.RegNet;

/// <summary>One residual block, fully resolved: the single description that the model, the counters and the weight layouts share.</summary>
/// <param name="Stage">1-based stage index.</param>
/// <param name="Index">1-based block index within the stage.</param>
/// <param name="InWidth">Input channels.</param>
/// <param name="OutWidth">Output channels.</param>
/// <param name="BottleneckWidth">Channels of the 1×1 → 3×3 → 1×1 bottleneck.</param>
/// <param name="GroupWidth">Channels per group of the 3×3 convolution.</param>
/// <param name="Stride">Stride of the 3×3 convolution (and of the projection).</param>
/// <param name="SeWidth">Squeeze width of the SE module, 0 for none.</param>
public sealed record BlockSpec(int Stage, int Index, int InWidth, int OutWidth, int BottleneckWidth, int GroupWidth, int Stride, int SeWidth)
{
    /// <summary>Groups of the 3×3 convolution.</summary>
    public int Groups => BottleneckWidth / GroupWidth;

    /// <summary>A 1×1 projection shortcut is needed when the shape changes.</summary>
    public bool HasProjection => InWidth != OutWidth || Stride != 1;
}
