namespace Microsoft.ML.RegNet;

/// <summary>Channel order the network's first convolution expects.</summary>
public enum ChannelOrder
{
    /// <summary>Red, green, blue: what timm, torchvision, Keras and this library's own weights expect.</summary>
    Rgb,
    /// <summary>Native pycls checkpoints were trained on BGR input (OpenCV decoding).</summary>
    Bgr,
}

/// <summary>
/// How pixel values (0–255) become network input: x = (pixel · Scale − Mean[c]) / Std[c], channels in <see cref="Order"/>.
/// Which normalisation applies is a property of the weights, so it travels with them instead of being written at call sites.
/// </summary>
/// <param name="Scale">Factor applied to 0–255 pixel values first (1/255 for all the built-in normalisations).</param>
/// <param name="Mean">Per-channel mean subtracted after scaling, three values in <paramref name="Order"/>.</param>
/// <param name="Std">Per-channel standard deviation divided by last, three positive values in <paramref name="Order"/>.</param>
/// <param name="Order">Channel order of the network input.</param>
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

    /// <summary>Equal when scale, order and all mean and std values are equal (records compare arrays by reference; this compares their values).</summary>
    /// <param name="other">The normalisation to compare with.</param>
    public bool Equals(ImageNormalization? other) =>
        other is not null && Scale == other.Scale && Order == other.Order && Mean.SequenceEqual(other.Mean) && Std.SequenceEqual(other.Std);

    /// <summary>A hash consistent with <see cref="Equals(ImageNormalization?)"/>.</summary>
    public override int GetHashCode() => HashCode.Combine(Scale, Order, Mean[0], Std[0]);
}

/// <summary>Resampling filter for resizes.</summary>
public enum Interpolation
{
    /// <summary>Bilinear: what every RegNet recipe and this library's evaluation transform use.</summary>
    Bilinear,
    /// <summary>Bicubic: the filter timm's weights were evaluated with. Recorded with the weights; this library's evaluation transform resizes bilinearly.</summary>
    Bicubic,
}

/// <summary>
/// Evaluation-time preprocessing expected by a set of weights: normalisation, input size and the centre-crop fraction
/// (resize the shorter side to <c>ImageSize / CropFraction</c>, then centre-crop <c>ImageSize</c>).
/// </summary>
/// <param name="Normalization">How pixel values become network input.</param>
/// <param name="ImageSize">Side of the square network input, in pixels (224).</param>
/// <param name="CropFraction">Fraction of the resized image kept by the centre crop, in (0, 1] (0.875).</param>
/// <param name="Interpolation">Resampling filter the weights were evaluated with (bilinear); stored with the weights, not used by this library's evaluation transform, which resizes bilinearly.</param>
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
