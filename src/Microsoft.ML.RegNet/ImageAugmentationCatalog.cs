using Microsoft.ML.RegNet;
using Microsoft.ML.RegNet.Data.MLNet;
using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML;

/// <summary>
/// RegNet image augmentation for ML.NET pipelines that train something else (the RegNet trainer augments by itself, see
/// <c>RegNetTrainer.Options.Augmentation</c>). The random operations live on <c>mlContext.Data</c>: they turn training
/// data into augmented data and are not estimators, so they can never end up in a fitted model and run at prediction
/// time. The deterministic evaluation transform lives on <c>mlContext.Transforms</c> and saves and loads with the model.
/// </summary>
/// <example>
/// <code>
/// var images = ml.Transforms.LoadImages("Image", folder, "Path").Fit(rows).Transform(rows);
/// var augmented = ml.Data.RandomResizedCrop(images, "Image", imageSize: 224, areaFactor: 0.08);
/// augmented = ml.Data.RandomHorizontalFlip(augmented, "Image");
/// var model = ml.Transforms.ExtractPixels("Pixels", "Image").Append(trainer).Fit(augmented);
/// </code>
/// </example>
public static class ImageAugmentationCatalog
{
    /// <summary>
    /// Inception-style random-resized crop to <paramref name="imageSize"/>²: a window of a random area fraction in
    /// [<paramref name="areaFactor"/>, 1] and aspect ratio in [3/4, 4/3] (ten tries, then the centre crop), resized bilinearly.
    /// </summary>
    /// <param name="catalog">The data catalog.</param>
    /// <param name="data">Data with an image column (<c>LoadImages</c>).</param>
    /// <param name="outputColumnName">Output image column.</param>
    /// <param name="inputColumnName">Input image column (defaults to the output name).</param>
    /// <param name="imageSize">Side of the square output, in pixels (224); at least 1.</param>
    /// <param name="areaFactor">Smallest area fraction, in (0, 1] (0.08).</param>
    /// <param name="aspectSampling">Uniform (pycls, Keras recipe) or log-uniform aspect ratio.</param>
    /// <param name="seed">Seed; defaults to the MLContext seed.</param>
    /// <returns>The data with new random crops on every pass over it.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="imageSize"/> or <paramref name="areaFactor"/> is out of range.</exception>
    public static IDataView RandomResizedCrop(this DataOperationsCatalog catalog, IDataView data, string outputColumnName,
        string? inputColumnName = null, int imageSize = 224, double areaFactor = 0.08,
        AspectRatioSampling aspectSampling = AspectRatioSampling.Uniform, int? seed = null)
    {
        var crop = new InceptionCrop(imageSize, areaFactor, aspectSampling);
        return Augment(catalog, data, outputColumnName, inputColumnName, seed, new ImageOperation(nameof(RandomResizedCrop), imageSize, imageSize, true, crop.Apply));
    }

    /// <summary>Random horizontal flip: each image is mirrored left–right with <paramref name="probability"/>.</summary>
    /// <param name="catalog">The data catalog.</param>
    /// <param name="data">Data with an image column.</param>
    /// <param name="outputColumnName">Output image column.</param>
    /// <param name="inputColumnName">Input image column (defaults to the output name).</param>
    /// <param name="probability">Chance of flipping each image, in [0, 1] (0.5).</param>
    /// <param name="seed">Seed; defaults to the MLContext seed.</param>
    /// <returns>The data with new random flips on every pass over it.</returns>
    public static IDataView RandomHorizontalFlip(this DataOperationsCatalog catalog, IDataView data, string outputColumnName,
        string? inputColumnName = null, double probability = 0.5, int? seed = null)
    {
        var flip = new HorizontalFlip(probability);
        return Augment(catalog, data, outputColumnName, inputColumnName, seed, InPlace(nameof(RandomHorizontalFlip), (image, random) => flip.Apply(image, random)));
    }

    /// <summary>
    /// PCA lighting noise on the bytes: rounded and clipped to [0, 255], unlike the trainer's batched pipeline, which adds
    /// the offset to float input unclipped as pycls does.
    /// </summary>
    /// <param name="catalog">The data catalog.</param>
    /// <param name="data">Data with an image column.</param>
    /// <param name="outputColumnName">Output image column.</param>
    /// <param name="inputColumnName">Input image column (defaults to the output name).</param>
    /// <param name="std">Standard deviation of the three eigenvector weights α (0.1, as pycls); 0 changes nothing.</param>
    /// <param name="seed">Seed; defaults to the MLContext seed.</param>
    /// <returns>The data with new lighting noise on every pass over it.</returns>
    public static IDataView RandomPcaLighting(this DataOperationsCatalog catalog, IDataView data, string outputColumnName,
        string? inputColumnName = null, double std = 0.1, int? seed = null)
        => Augment(catalog, data, outputColumnName, inputColumnName, seed, InPlace(nameof(RandomPcaLighting), new PcaLighting(std).Apply));

    /// <summary>
    /// The evaluation transform as an ML.NET estimator (the same one the trainer, the transformer and saved models run):
    /// shorter side to <c>imageSize / cropFraction</c> by ML.NET's resizer, then the centred <paramref name="imageSize"/>²
    /// window. Built from ML.NET's own transformers, so it saves and loads with the model. (The RegNet trainer applies it
    /// by itself; put it before other trainers or ONNX models.)
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Output image column.</param>
    /// <param name="inputColumnName">Input image column (defaults to the output name).</param>
    /// <param name="imageSize">Side of the square output, in pixels (224); at least 1.</param>
    /// <param name="cropFraction">Crop fraction in (0, 1] (0.875 → 256 for 224).</param>
    /// <returns>An estimator of ML.NET's own transformers; fit it like any other.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="imageSize"/> or <paramref name="cropFraction"/> is out of range.</exception>
    public static IEstimator<ITransformer> EvaluationCrop(this TransformsCatalog catalog, string outputColumnName,
        string? inputColumnName = null, int imageSize = 224, double cropFraction = 0.875)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrEmpty(outputColumnName);
        var crop = new RegNet.Data.Transforms.EvaluationCrop(imageSize, cropFraction);
        return RegNet.Onnx.EvaluationCropChain.Create(new MLContext(MLNetInternals.Seed(catalog)), crop, outputColumnName, inputColumnName ?? outputColumnName);
    }

    /// <summary>The evaluation transform of a set of weights (size and crop fraction from their preprocessing).</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Output image column.</param>
    /// <param name="spec">The weights' preprocessing (e.g. <see cref="WeightFileReport.Preprocessing"/>).</param>
    /// <param name="inputColumnName">Input image column (defaults to the output name).</param>
    /// <returns>An estimator of ML.NET's own transformers; fit it like any other.</returns>
    public static IEstimator<ITransformer> EvaluationCrop(this TransformsCatalog catalog, string outputColumnName,
        PreprocessingSpec spec, string? inputColumnName = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return catalog.EvaluationCrop(outputColumnName, inputColumnName, spec.ImageSize, spec.CropFraction);
    }

    private static IDataView Augment(DataOperationsCatalog catalog, IDataView data, string outputColumnName, string? inputColumnName, int? seed,
        ImageOperation operation)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new AugmentedImageDataView(operation, data, outputColumnName, inputColumnName ?? outputColumnName,
            seed ?? MLNetInternals.Seed(catalog) ?? Random.Shared.Next());
    }

    private static ImageOperation InPlace(string name, Action<RgbImage, AugmentationRandom> apply) =>
        new(name, 0, 0, true, (image, random) =>
        {
            apply(image, random);
            return image;
        });
}
