namespace Microsoft.ML.RegNet.Data.Transforms;

/// <summary>Random horizontal flip (training only): mirrors the image left–right with probability <see cref="Probability"/>.</summary>
internal sealed class HorizontalFlip
{
    /// <summary>Defines the flip.</summary>
    /// <param name="probability">Chance of flipping, in [0, 1] (0.5 in the seed trainer and pycls).</param>
    public HorizontalFlip(double probability = 0.5)
    {
        if (!(probability >= 0 && probability <= 1))
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "The flip probability must be in [0, 1].");
        Probability = probability;
    }

    /// <summary>Chance of flipping.</summary>
    public double Probability { get; }

    /// <summary>Decides whether to flip (always consumes one draw, so later draws do not depend on the outcome).</summary>
    public bool Sample(AugmentationRandom random) => random.NextDouble() < Probability;

    /// <summary>Mirrors <paramref name="image"/> in place.</summary>
    public static void Mirror(RgbImage image)
    {
        int w = image.Width, stride = image.Stride;
        Span<byte> pixels = image.Pixels;
        for (int y = 0; y < image.Height; y++)
        {
            Span<byte> row = pixels.Slice(y * stride, stride);
            for (int l = 0, r = (w - 1) * 3; l < r; l += 3, r -= 3)
            {
                (row[l], row[r]) = (row[r], row[l]);
                (row[l + 1], row[r + 1]) = (row[r + 1], row[l + 1]);
                (row[l + 2], row[r + 2]) = (row[r + 2], row[l + 2]);
            }
        }
    }

    /// <summary>Draws and, when drawn, mirrors <paramref name="image"/> in place; returns whether it flipped.</summary>
    public bool Apply(RgbImage image, AugmentationRandom random)
    {
        bool flip = Sample(random);
        if (flip) Mirror(image);
        return flip;
    }
}
