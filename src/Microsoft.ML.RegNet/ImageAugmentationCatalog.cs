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
    /// <summary>Inception-style random-resized crop to <paramref name="imageSize"/>² (see <see cref="InceptionCrop"/>).</summary>
    /// <param name="catalog">The data catalog.</param>
    /// <param name="data">Data with an image column (<c>LoadImages</c>).</param>
    /// <param name="outputColumnName">Output image column.</param>
    /// <param name="inputColumnName">Input image column (defaults to the output name).</param>
    /// <param name="imageSize">Output side.</param>
    /// <param name="areaFactor">Smallest area fraction, in (0, 1].</param>
    /// <param name="aspectSampling">Uniform (pycls, Keras recipe) or log-uniform aspect ratio.</param>
    /// <param name="seed">Seed; defaults to the MLContext seed.</param>
    /// <returns>The data with new random crops on every pass over it.</returns>
    public static IDataView RandomResizedCrop(this DataOperationsCatalog catalog, IDataView data, string outputColumnName,
        string? inputColumnName = null, int imageSize = 224, double areaFactor = 0.08,
        AspectRatioSampling aspectSampling = AspectRatioSampling.Uniform, int? seed = null)
    {
        var crop = new InceptionCrop(imageSize, areaFactor, aspectSampling);
        return Augment(catalog, data, outputColumnName, inputColumnName, seed, new ImageOperation(nameof(RandomResizedCrop), imageSize, imageSize, true, crop.Apply));
    }

    /// <summary>Random horizontal flip.</summary>
    /// <param name="catalog">The data catalog.</param>
    /// <param name="data">Data with an image column.</param>
    /// <param name="outputColumnName">Output image column.</param>
    /// <param name="inputColumnName">Input image column (defaults to the output name).</param>
    /// <param name="probability">Flip probability.</param>
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
    /// <param name="std">Standard deviation of α (0.1).</param>
    /// <param name="seed">Seed; defaults to the MLContext seed.</param>
    /// <returns>The data with new lighting noise on every pass over it.</returns>
    public static IDataView RandomPcaLighting(this DataOperationsCatalog catalog, IDataView data, string outputColumnName,
        string? inputColumnName = null, double std = 0.1, int? seed = null)
        => Augment(catalog, data, outputColumnName, inputColumnName, seed, InPlace(nameof(RandomPcaLighting), new PcaLighting(std).Apply));

    /// <summary>
    /// The evaluation transform as an ML.NET estimator (see <see cref="Microsoft.ML.RegNet.Data.Transforms.EvaluationCrop"/>):
    /// shorter side to <c>imageSize / cropFraction</c> by ML.NET's resizer, then the centred <paramref name="imageSize"/>²
    /// window. Built from ML.NET's own transformers, so it saves and loads with the model. (The RegNet trainer applies it
    /// by itself; put it before other trainers or ONNX models.)
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Output image column.</param>
    /// <param name="inputColumnName">Input image column (defaults to the output name).</param>
    /// <param name="imageSize">Output side.</param>
    /// <param name="cropFraction">Crop fraction in (0, 1] (0.875 → 256 for 224).</param>
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
    /// <param name="spec">The weights' preprocessing.</param>
    /// <param name="inputColumnName">Input image column (defaults to the output name).</param>
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
