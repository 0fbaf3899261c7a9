namespace Microsoft.ML.RegNet.Data.Transforms;

/// <summary>
/// Inception-style random-resized crop (training only): up to <see cref="Attempts"/> draws of an area fraction
/// <c>U(AreaFactor, 1)</c> and an aspect ratio in [<see cref="MinAspectRatio"/>, <see cref="MaxAspectRatio"/>]
/// (<see cref="AspectRatioSampling"/>), <c>w = round(√(area·aspect))</c>, <c>h = round(√(area/aspect))</c> (half to even),
/// then a 50% swap of w and h; the first draw that fits (<c>1 ≤ w ≤ W</c>, <c>1 ≤ h ≤ H</c>) gets a uniform offset and is
/// resized, with the evaluation transform's resampler (SkiaSharp, high quality), to <see cref="Size"/>×<see cref="Size"/>. When no draw fits, the <see cref="EvaluationCrop"/> is used.
/// </summary>
/// <remarks>
/// Deliberate difference from the seed trainer (regnets_trainer <c>_get_random_dims</c>): that loop always ran all ten
/// tries and returned the offsets cached from the last <i>valid</i> try together with the width and height of the
/// <i>last</i> try, so about a quarter of its crops were clamped, distorted rectangles. Here the <b>first valid draw wins,
/// offsets and size together</b>, as in pycls <c>random_sized_crop</c> — which is the distribution the trainer meant
/// (picking the last valid draw instead of the first is distributionally the same). Validity uses pycls' "≤" (a crop may
/// span the full side) rather than the trainer's strict "&lt;". The fallback is the trainer's (shorter side to
/// <c>Size/CropFraction</c>, centre crop); pycls instead resizes the shorter side straight to <c>Size</c>.
/// </remarks>
internal sealed class InceptionCrop
{
    /// <summary>Defines the crop; parameters are validated here, pixels are touched only by <see cref="Apply(RgbImage, AugmentationRandom)"/>.</summary>
    /// <param name="size">Output side in pixels.</param>
    /// <param name="areaFactor">Lower bound of the area fraction, in (0, 1] (0.08 standard; 0.25 for the Keras X002).</param>
    /// <param name="aspectSampling">Uniform (seed trainer, pycls) or log-uniform (torchvision, timm).</param>
    /// <param name="minAspectRatio">Lower aspect bound (3/4).</param>
    /// <param name="maxAspectRatio">Upper aspect bound (4/3).</param>
    /// <param name="attempts">Draws before the fallback (10).</param>
    /// <param name="fallbackCropFraction">Crop fraction of the fallback evaluation crop (0.875).</param>
    public InceptionCrop(int size, double areaFactor = 0.08, AspectRatioSampling aspectSampling = AspectRatioSampling.Uniform,
        double minAspectRatio = 3.0 / 4.0, double maxAspectRatio = 4.0 / 3.0, int attempts = 10, double fallbackCropFraction = 0.875)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "The crop size must be positive.");
        if (!(areaFactor > 0 && areaFactor <= 1))
            throw new ArgumentOutOfRangeException(nameof(areaFactor), areaFactor, "The area factor (smallest area fraction) must be in (0, 1].");
        if (!(minAspectRatio > 0 && minAspectRatio <= maxAspectRatio && double.IsFinite(maxAspectRatio)))
            throw new ArgumentOutOfRangeException(nameof(minAspectRatio), $"Aspect bounds must satisfy 0 < min ≤ max (got {minAspectRatio}, {maxAspectRatio}).");
        if (attempts < 1) throw new ArgumentOutOfRangeException(nameof(attempts), attempts, "At least one attempt is needed.");
        Size = size;
        AreaFactor = areaFactor;
        AspectSampling = aspectSampling;
        MinAspectRatio = minAspectRatio;
        MaxAspectRatio = maxAspectRatio;
        Attempts = attempts;
        Fallback = new EvaluationCrop(size, fallbackCropFraction);
    }

    /// <summary>Output side.</summary>
    public int Size { get; }

    /// <summary>Smallest area fraction.</summary>
    public double AreaFactor { get; }

    /// <summary>Aspect sampling.</summary>
    public AspectRatioSampling AspectSampling { get; }

    /// <summary>Lower aspect bound.</summary>
    public double MinAspectRatio { get; }

    /// <summary>Upper aspect bound.</summary>
    public double MaxAspectRatio { get; }

    /// <summary>Draws before the fallback.</summary>
    public int Attempts { get; }

    /// <summary>The fallback crop.</summary>
    public EvaluationCrop Fallback { get; }

    /// <summary>Draws the crop geometry for a <paramref name="width"/>×<paramref name="height"/> image.</summary>
    public ResizePlan Sample(int width, int height, AugmentationRandom random)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"Image size must be positive (got {width}×{height}).");
        double area = (double)width * height;
        double logMin = Math.Log(MinAspectRatio), logMax = Math.Log(MaxAspectRatio);
        for (int attempt = 0; attempt < Attempts; attempt++)
        {
            double targetArea = random.NextDouble(AreaFactor, 1.0) * area;
            double aspect = AspectSampling == AspectRatioSampling.Uniform
                ? random.NextDouble(MinAspectRatio, MaxAspectRatio)
                : Math.Exp(random.NextDouble(logMin, logMax));
            int w = (int)Math.Round(Math.Sqrt(targetArea * aspect), MidpointRounding.ToEven);
            int h = (int)Math.Round(Math.Sqrt(targetArea / aspect), MidpointRounding.ToEven);
            if (random.NextDouble() < 0.5) (w, h) = (h, w);
            if (w >= 1 && h >= 1 && w <= width && h <= height)
            {
                int y = random.NextInt(height - h + 1);
                int x = random.NextInt(width - w + 1);
                return new ResizePlan(new CropBox(x, y, w, h), Size, Size, 0, 0, Size, Size);
            }
        }
        return Fallback.Plan(width, height) with { IsFallback = true };
    }

    /// <summary>Draws a crop and executes it.</summary>
    public RgbImage Apply(RgbImage image, AugmentationRandom random) => Apply(image, Sample(image.Width, image.Height, random));

    /// <summary>Executes a drawn crop with the evaluation transform's resampler (a fallback is the evaluation crop itself),
    /// into <paramref name="output"/> when it is <see cref="Size"/>².</summary>
    public RgbImage Apply(RgbImage image, ResizePlan plan, RgbImage? output = null) =>
        plan.IsFallback ? Fallback.Apply(image, output) : SkiaCropResize.Apply(image, plan, output);
}
