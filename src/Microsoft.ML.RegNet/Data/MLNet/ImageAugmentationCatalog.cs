using System.Reflection;
using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Data.MLNet;

/// <summary>
/// RegNet image augmentations on <c>mlContext.Transforms</c>, for <c>MLImage</c> columns (from <c>LoadImages</c>):
/// compose them between <c>LoadImages</c> and <c>ExtractPixels</c>. The random ones are training-only (do not put them in
/// a scoring pipeline); <c>EvaluationCrop</c> is the deterministic evaluation transform. Random transforms are
/// seeded from the <see cref="MLContext"/> seed unless a seed is given.
/// </summary>
/// <example>
/// <code>
/// var pipeline = ml.Transforms.LoadImages("Image", folder, "Path")
///     .Append(ml.Transforms.RandomResizedCrop("Image", imageSize: 224, areaFactor: 0.08))
///     .Append(ml.Transforms.RandomHorizontalFlip("Image"))
///     .Append(ml.Transforms.RandomPcaLighting("Image"))
///     .Append(ml.Transforms.ExtractPixels("Pixels", "Image"));
/// </code>
/// </example>
public static class ImageAugmentationCatalog
{
    /// <summary>Inception-style random-resized crop to <paramref name="imageSize"/>² (training only; see <see cref="InceptionCrop"/>).</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Output image column.</param>
    /// <param name="inputColumnName">Input image column (defaults to the output name).</param>
    /// <param name="imageSize">Output side.</param>
    /// <param name="areaFactor">Smallest area fraction, in (0, 1].</param>
    /// <param name="aspectSampling">Uniform (seed, pycls) or log-uniform aspect ratio.</param>
    /// <param name="seed">Seed; defaults to the MLContext seed.</param>
    public static ImageAugmentationEstimator RandomResizedCrop(this TransformsCatalog catalog, string outputColumnName,
        string? inputColumnName = null, int imageSize = 224, double areaFactor = 0.08,
        AspectRatioSampling aspectSampling = AspectRatioSampling.Uniform, int? seed = null)
    {
        var crop = new InceptionCrop(imageSize, areaFactor, aspectSampling);
        var op = new ImageOperation(nameof(RandomResizedCrop), imageSize, imageSize, true, crop.Apply);
        return new ImageAugmentationEstimator(op, outputColumnName, inputColumnName ?? outputColumnName, ResolveSeed(catalog, seed));
    }

    /// <summary>Random horizontal flip (training only).</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Output image column.</param>
    /// <param name="inputColumnName">Input image column (defaults to the output name).</param>
    /// <param name="probability">Flip probability.</param>
    /// <param name="seed">Seed; defaults to the MLContext seed.</param>
    public static ImageAugmentationEstimator RandomHorizontalFlip(this TransformsCatalog catalog, string outputColumnName,
        string? inputColumnName = null, double probability = 0.5, int? seed = null)
    {
        var flip = new HorizontalFlip(probability);
        var op = new ImageOperation(nameof(RandomHorizontalFlip), 0, 0, true, (image, random) =>
        {
            flip.Apply(image, random);
            return image;
        });
        return new ImageAugmentationEstimator(op, outputColumnName, inputColumnName ?? outputColumnName, ResolveSeed(catalog, seed));
    }

    /// <summary>
    /// PCA lighting noise on the bytes (training only): rounded and clipped to [0, 255], unlike the batched pipeline, which
    /// adds the offset to float input unclipped as pycls does.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Output image column.</param>
    /// <param name="inputColumnName">Input image column (defaults to the output name).</param>
    /// <param name="std">Standard deviation of α (0.1).</param>
    /// <param name="seed">Seed; defaults to the MLContext seed.</param>
    public static ImageAugmentationEstimator RandomPcaLighting(this TransformsCatalog catalog, string outputColumnName,
        string? inputColumnName = null, double std = 0.1, int? seed = null)
    {
        var lighting = new PcaLighting(std);
        var op = new ImageOperation(nameof(RandomPcaLighting), 0, 0, true, (image, random) =>
        {
            lighting.Apply(image, random);
            return image;
        });
        return new ImageAugmentationEstimator(op, outputColumnName, inputColumnName ?? outputColumnName, ResolveSeed(catalog, seed));
    }

    /// <summary>
    /// The evaluation transform (deterministic; for training and scoring): shorter side to
    /// <c>imageSize / cropFraction</c>, centre crop <paramref name="imageSize"/>² (see <see cref="Transforms.EvaluationCrop"/>).
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Output image column.</param>
    /// <param name="inputColumnName">Input image column (defaults to the output name).</param>
    /// <param name="imageSize">Output side.</param>
    /// <param name="cropFraction">Crop fraction in (0, 1] (0.875 → 256 for 224).</param>
    public static ImageAugmentationEstimator EvaluationCrop(this TransformsCatalog catalog, string outputColumnName,
        string? inputColumnName = null, int imageSize = 224, double cropFraction = 0.875)
    {
        var crop = new Transforms.EvaluationCrop(imageSize, cropFraction);
        var op = new ImageOperation(nameof(EvaluationCrop), imageSize, imageSize, false, (image, _) => crop.Apply(image));
        return new ImageAugmentationEstimator(op, outputColumnName, inputColumnName ?? outputColumnName, 0);
    }

    /// <summary>The evaluation transform of a set of weights (size and crop fraction from their preprocessing).</summary>
    public static ImageAugmentationEstimator EvaluationCrop(this TransformsCatalog catalog, string outputColumnName,
        PreprocessingSpec spec, string? inputColumnName = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return catalog.EvaluationCrop(outputColumnName, inputColumnName, spec.ImageSize, spec.CropFraction);
    }

    /// <summary>
    /// The seed of the MLContext behind a catalog, or null when it was created without one. ML.NET keeps it internal; it
    /// is read through <c>IInternalCatalog.Environment</c> and <c>IHostEnvironmentInternal.Seed</c>.
    /// </summary>
    public static int? GetContextSeed(TransformsCatalog catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var env = catalog.GetType().GetInterface("Microsoft.ML.Data.IInternalCatalog")
            ?.GetProperty("Environment", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)?.GetValue(catalog);
        if (env is null) return null;
        return env.GetType().GetInterface("Microsoft.ML.Runtime.IHostEnvironmentInternal")
            ?.GetProperty("Seed", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)?.GetValue(env) as int?;
    }

    private static int ResolveSeed(TransformsCatalog catalog, int? seed)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return seed ?? GetContextSeed(catalog) ?? Random.Shared.Next();
    }
}
