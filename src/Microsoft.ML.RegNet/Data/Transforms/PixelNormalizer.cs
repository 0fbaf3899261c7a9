namespace Microsoft.ML.RegNet.Data.Transforms;

/// <summary>
/// Turns an <see cref="RgbImage"/> into planar network input (CHW float) with an <see cref="ImageNormalization"/>:
/// <c>x = (pixel·Scale + offset_c·255·Scale − Mean[c]) / Std[c]</c>, planes in the normalisation's channel order.
/// The optional per-channel offsets are PCA-lighting offsets in [0, 1] units (added before normalisation, unclipped, as pycls does).
/// </summary>
internal static class PixelNormalizer
{
    /// <summary>Writes <c>3·H·W</c> floats to <paramref name="destination"/>.</summary>
    public static void WriteChw(RgbImage image, ImageNormalization normalization, Span<float> destination, ReadOnlySpan<float> offsets = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(normalization);
        int plane = image.Width * image.Height;
        if (destination.Length < plane * 3)
            throw new ArgumentException($"Destination holds {destination.Length} floats; {image.Width}×{image.Height}×3 needed.", nameof(destination));
        if (normalization.Mean.Length != 3 || normalization.Std.Length != 3)
            throw new ArgumentException("Normalisation needs three means and three standard deviations.", nameof(normalization));
        Span<float> a = stackalloc float[3], b = stackalloc float[3];
        for (int plane_ = 0; plane_ < 3; plane_++)
        {
            int c = normalization.Order == ChannelOrder.Bgr ? 2 - plane_ : plane_; // source RGB channel of this plane
            float off = offsets.IsEmpty ? 0f : offsets[c];
            a[plane_] = normalization.Scale / normalization.Std[c];
            b[plane_] = (off * 255f * normalization.Scale - normalization.Mean[c]) / normalization.Std[c];
        }
        bool bgr = normalization.Order == ChannelOrder.Bgr;
        Span<float> p0 = destination[..plane], p1 = destination.Slice(plane, plane), p2 = destination.Slice(2 * plane, plane);
        ReadOnlySpan<byte> px = image.Pixels;
        float a0 = a[0], a1 = a[1], a2 = a[2], b0 = b[0], b1 = b[1], b2 = b[2];
        int s0 = bgr ? 2 : 0, s2 = bgr ? 0 : 2;
        for (int i = 0, s = 0; i < plane; i++, s += 3)
        {
            p0[i] = px[s + s0] * a0 + b0;
            p1[i] = px[s + 1] * a1 + b1;
            p2[i] = px[s + s2] * a2 + b2;
        }
    }
}
