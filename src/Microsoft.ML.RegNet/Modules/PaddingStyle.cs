using Microsoft.ML.RegNet.Modules;

namespace Microsoft.ML.RegNet;

/// <summary>How strided 3×3 convolutions pad their input.</summary>
public enum PaddingStyle
{
    /// <summary>One pixel on every side (pycls, timm, torchvision).</summary>
    Symmetric,

    /// <summary>TensorFlow "same": on even sizes 0 before and 1 after (Keras weights were trained this way).</summary>
    TensorFlowSame,
}
