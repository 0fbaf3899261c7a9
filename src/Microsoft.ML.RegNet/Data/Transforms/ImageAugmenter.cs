namespace Microsoft.ML.RegNet.Data.Transforms;

/// <summary>
/// Executes an <see cref="AugmentationOptions"/> on one decoded image and writes normalised CHW floats: the per-image
/// part of the input pipeline, shared by <c>ImageBatchPipeline</c> and the sample. Thread-safe (stateless apart from
/// its definitions); randomness comes from the caller's <see cref="AugmentationRandom"/>, drawn in a fixed order
/// (crop, flip, lighting) so a sample's result depends only on its random stream.
/// </summary>
internal sealed class ImageAugmenter
{
    /// <summary>Builds the operations for <paramref name="imageSize"/>-pixel square outputs.</summary>
    public ImageAugmenter(AugmentationOptions options, int imageSize, ImageNormalization normalization)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(normalization);
        if (imageSize <= 0) throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize, "The image size must be positive.");
        options.Validate();
        Options = options;
        ImageSize = imageSize;
        Normalization = normalization;
        EvaluationCrop = new EvaluationCrop(imageSize, options.CropFraction);
        if (options.Train)
        {
            Crop = new InceptionCrop(imageSize, options.AreaFactor, options.AspectSampling, options.MinAspectRatio,
                options.MaxAspectRatio, options.CropAttempts, options.CropFraction);
            Flip = options.FlipProbability > 0 ? new HorizontalFlip(options.FlipProbability) : null;
            Lighting = options.LightingStd > 0 ? new PcaLighting(options.LightingStd) : null;
        }
    }

    /// <summary>The settings.</summary>
    public AugmentationOptions Options { get; }

    /// <summary>Output side.</summary>
    public int ImageSize { get; }

    /// <summary>Normalisation applied last.</summary>
    public ImageNormalization Normalization { get; }

    /// <summary>The evaluation crop (used when not training).</summary>
    public EvaluationCrop EvaluationCrop { get; }

    /// <summary>The random crop, when training.</summary>
    public InceptionCrop? Crop { get; }

    /// <summary>The flip, when training with a nonzero probability.</summary>
    public HorizontalFlip? Flip { get; }

    /// <summary>The lighting noise, when training with a nonzero std.</summary>
    public PcaLighting? Lighting { get; }

    /// <summary>Floats per output image.</summary>
    public int OutputLength => 3 * ImageSize * ImageSize;

    /// <summary>Geometry and colour steps on bytes; returns the augmented <c>ImageSize²</c> image and the lighting offsets.</summary>
    /// <param name="image">The decoded image (not modified).</param>
    /// <param name="random">The sample's random stream (unused for evaluation).</param>
    /// <param name="lightingOffsets">Receives the three lighting offsets (zeros when lighting is off).</param>
    /// <param name="scratch">Optional reusable output image of <c>ImageSize²</c>.</param>
    public RgbImage Augment(RgbImage image, AugmentationRandom random, Span<float> lightingOffsets, RgbImage? scratch = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        var output = scratch is { } s && s.Width == ImageSize && s.Height == ImageSize ? s : new RgbImage(ImageSize, ImageSize);
        lightingOffsets[..3].Clear();
        if (Crop is null)
        {
            return EvaluationCrop.Apply(image, output);
        }
        output = Crop.Apply(image, Crop.Sample(image.Width, image.Height, random), output);
        Flip?.Apply(output, random);
        Lighting?.Sample(random, lightingOffsets);
        return output;
    }

    /// <summary>Augments and normalises into <paramref name="destination"/> (<see cref="OutputLength"/> floats, CHW).</summary>
    public void Process(RgbImage image, AugmentationRandom random, Span<float> destination, RgbImage? scratch = null)
    {
        Span<float> offsets = stackalloc float[3];
        var output = Augment(image, random, offsets, scratch);
        PixelNormalizer.WriteChw(output, Normalization, destination, offsets);
    }
}
