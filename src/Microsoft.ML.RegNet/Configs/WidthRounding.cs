namespace Microsoft.ML.RegNet;

/// <summary>How a stage width is made a multiple of its group width.</summary>
public enum WidthRounding
{
    /// <summary>Round to the nearest multiple (pycls, timm, Keras): the published architectures.</summary>
    Nearest,

    /// <summary>torchvision's <c>_make_divisible</c>: round half up, then add a group if the result fell below 90 %.
    /// Changes X004, X040, Y008, Y040 and Y080; needed for torchvision's <c>regnet_x_400mf</c>, <c>regnet_y_800mf</c>, <c>regnet_y_8gf</c> weights.</summary>
    TorchVision,
}
