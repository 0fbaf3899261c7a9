namespace Microsoft.ML.RegNet.Data.Transforms;

/// <summary>
/// AlexNet-style PCA lighting noise (training only): per image, α ~ N(0, <see cref="Std"/>²) for each of the three
/// principal components, and channel c is shifted by <c>Σ_j V[c, j]·α_j·λ_j</c> in [0, 1] units (×255 on bytes).
/// Constants are the ImageNet ones of fb.resnet.torch, pycls and the seed trainer (RGB order).
/// </summary>
/// <remarks>
/// pycls adds the offset to the float image before normalisation without clipping; the batched pipeline does the same
/// (the offset is folded into normalisation). <see cref="Apply(RgbImage, ReadOnlySpan{float})"/> works on bytes and therefore
/// clips and rounds, like the seed trainer (which truncated instead of rounding).
/// </remarks>
internal sealed class PcaLighting
{
    /// <summary>ImageNet eigenvalues (0.2175, 0.0188, 0.0045).</summary>
    public static IReadOnlyList<float> ImageNetEigenvalues { get; } = new[] { 0.2175f, 0.0188f, 0.0045f };

    /// <summary>ImageNet eigenvectors: row = channel (R, G, B), column = component.</summary>
    public static float[,] ImageNetEigenvectors => new float[,]
    {
        { -0.5675f, 0.7192f, 0.4009f },
        { -0.5808f, -0.0045f, -0.8140f },
        { -0.5836f, -0.6948f, 0.4203f },
    };

    private readonly float[] _eigenvalues;
    private readonly float[,] _eigenvectors;

    /// <summary>Defines the noise with the ImageNet constants.</summary>
    /// <param name="std">Standard deviation of α (0.1 in pycls and the seed); 0 disables the noise.</param>
    public PcaLighting(double std = 0.1) : this(std, ImageNetEigenvalues.ToArray(), ImageNetEigenvectors) { }

    /// <summary>Defines the noise with custom constants.</summary>
    public PcaLighting(double std, float[] eigenvalues, float[,] eigenvectors)
    {
        if (!(std >= 0 && double.IsFinite(std)))
            throw new ArgumentOutOfRangeException(nameof(std), std, "The lighting standard deviation must be finite and ≥ 0.");
        ArgumentNullException.ThrowIfNull(eigenvalues);
        ArgumentNullException.ThrowIfNull(eigenvectors);
        if (eigenvalues.Length != 3 || eigenvectors.GetLength(0) != 3 || eigenvectors.GetLength(1) != 3)
            throw new ArgumentException("Lighting needs 3 eigenvalues and a 3×3 eigenvector matrix.");
        Std = std;
        _eigenvalues = (float[])eigenvalues.Clone();
        _eigenvectors = (float[,])eigenvectors.Clone();
    }

    /// <summary>Standard deviation of α.</summary>
    public double Std { get; }

    /// <summary>Draws the per-channel offsets (R, G, B) in [0, 1] units into <paramref name="offsets"/>.</summary>
    public void Sample(AugmentationRandom random, Span<float> offsets)
    {
        if (offsets.Length < 3) throw new ArgumentException("Need room for three offsets.", nameof(offsets));
        Span<double> a = stackalloc double[3];
        for (int j = 0; j < 3; j++) a[j] = random.NextGaussian() * Std * _eigenvalues[j];
        for (int c = 0; c < 3; c++)
            offsets[c] = (float)(_eigenvectors[c, 0] * a[0] + _eigenvectors[c, 1] * a[1] + _eigenvectors[c, 2] * a[2]);
    }

    /// <summary>Draws the offsets (R, G, B) in [0, 1] units.</summary>
    public float[] Sample(AugmentationRandom random)
    {
        var o = new float[3];
        Sample(random, o);
        return o;
    }

    /// <summary>Adds <c>255·offset</c> to each channel of a byte image in place, rounding and clipping to [0, 255].</summary>
    public static void Apply(RgbImage image, ReadOnlySpan<float> offsets)
    {
        Span<byte> lut = stackalloc byte[256 * 3];
        for (int c = 0; c < 3; c++)
            for (int v = 0; v < 256; v++)
                lut[c * 256 + v] = (byte)Math.Clamp(MathF.Round(v + 255f * offsets[c], MidpointRounding.ToEven), 0, 255);
        Span<byte> p = image.Pixels;
        for (int i = 0; i < p.Length; i += 3)
        {
            p[i] = lut[p[i]];
            p[i + 1] = lut[256 + p[i + 1]];
            p[i + 2] = lut[512 + p[i + 2]];
        }
    }

    /// <summary>Draws offsets and applies them to a byte image in place.</summary>
    public void Apply(RgbImage image, AugmentationRandom random)
    {
        Span<float> o = stackalloc float[3];
        Sample(random, o);
        Apply(image, o);
    }
}
