namespace Microsoft.ML.RegNet.Data;

/// <summary>Channel order the network's first convolution expects.</summary>
public enum ChannelOrder
{
    Rgb,
    /// <summary>Native pycls checkpoints were trained on BGR input (OpenCV decoding).</summary>
    Bgr,
}

/// <summary>
/// How pixel values (0–255) become network input: x = (pixel · Scale − Mean[c]) / Std[c], channels in <see cref="Order"/>.
/// Which normalisation applies is a property of the weights, so it travels with them instead of being written at call sites.
/// </summary>
public sealed record ImageNormalization(float Scale, float[] Mean, float[] Std, ChannelOrder Order)
{
    /// <summary>ImageNet mean/std on [0, 1] RGB (pycls recipe, timm, torchvision).</summary>
    public static ImageNormalization ImageNet { get; } =
        new(1f / 255f, new[] { 0.485f, 0.456f, 0.406f }, new[] { 0.229f, 0.224f, 0.225f }, ChannelOrder.Rgb);

    /// <summary>ImageNet mean/std, BGR channel order (native pycls checkpoints).</summary>
    public static ImageNormalization ImageNetBgr { get; } = ImageNet with { Order = ChannelOrder.Bgr };

    /// <summary>Only 1/255 (the Keras RegNets: <c>Rescaling(1/255)</c>, no mean/std).</summary>
    public static ImageNormalization UnitScale { get; } =
        new(1f / 255f, new[] { 0f, 0f, 0f }, new[] { 1f, 1f, 1f }, ChannelOrder.Rgb);

    /// <summary>A single mean/std for all channels (e.g. grayscale data sets copied to three channels).</summary>
    public static ImageNormalization Uniform(float mean, float std) =>
        new(1f / 255f, new[] { mean, mean, mean }, new[] { std, std, std }, ChannelOrder.Rgb);

    public bool Equals(ImageNormalization? other) =>
        other is not null && Scale == other.Scale && Order == other.Order && Mean.SequenceEqual(other.Mean) && Std.SequenceEqual(other.Std);

    public override int GetHashCode() => HashCode.Combine(Scale, Order, Mean[0], Std[0]);
}

/// <summary>Resampling filter for resizes.</summary>
public enum Interpolation
{
    Bilinear,
    Bicubic,
}

/// <summary>
/// Evaluation-time preprocessing expected by a set of weights: normalisation, input size and the centre-crop fraction
/// (resize the shorter side to <c>ImageSize / CropFraction</c>, then centre-crop <c>ImageSize</c>).
/// </summary>
public sealed record PreprocessingSpec(ImageNormalization Normalization, int ImageSize = 224, double CropFraction = 0.875,
    Interpolation Interpolation = Interpolation.Bilinear)
{
    /// <summary>pycls / timm / torchvision V1 weights: ImageNet mean/std, 224, crop 0.875.</summary>
    public static PreprocessingSpec ImageNet { get; } = new(ImageNormalization.ImageNet);

    /// <summary>Keras RegNets: 1/255 only, 224, crop 0.875.</summary>
    public static PreprocessingSpec Keras { get; } = new(ImageNormalization.UnitScale);

    /// <summary>Shorter side before the centre crop (224 / 0.875 = 256).</summary>
    public int ResizeShorterSide => ShorterSideFor(ImageSize, CropFraction);

    /// <summary>The one rounding of <c>size / cropFraction</c> (half away from zero), never below <paramref name="size"/>.</summary>
    public static int ShorterSideFor(int size, double cropFraction) =>
        Math.Max(size, (int)Math.Round(size / cropFraction, MidpointRounding.AwayFromZero));
}
