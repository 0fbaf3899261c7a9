using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data;
using Microsoft.ML.RegNet.Models;
using Microsoft.ML.Transforms;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.RegNet.Onnx;

/// <summary>
/// Builds an ML.NET scoring pipeline for a <see cref="RegNetModel"/> out of ML.NET's own transformers only
/// (ResizeImages → ExtractPixels → ApplyOnnxModel → CopyColumns → Hash → MapValue → DropColumns), so the result can be saved
/// with <c>mlContext.Model.Save</c> and loaded with <c>mlContext.Model.Load</c> by any application that references
/// Microsoft.ML, Microsoft.ML.ImageAnalytics and Microsoft.ML.OnnxTransformer; the ONNX bytes are embedded in the zip.
/// </summary>
/// <remarks>
/// <para>Preprocessing: ResizeImages(IsoCrop, Center) scales the shorter side to <see cref="PreprocessingSpec.ResizeShorterSide"/>
/// (ImageSize / CropFraction) and keeps the centre square; the ONNX graph then slices the centre ImageSize² and applies
/// the normalisation. That is the training evaluation transform (resize shorter side, centre crop), with one deviation:
/// the resampling is SkiaSharp's (ML.NET's resizer), not PIL/torchvision's antialiased bilinear/bicubic, so pixel values
/// after the resize differ slightly from a Python pipeline's, and <see cref="PreprocessingSpec.Interpolation"/> is not applied.</para>
/// <para>Scoring is one row per ONNX Runtime call (ApplyOnnxModel's design); for throughput use <see cref="RegNetOnnxSession"/>.</para>
/// </remarks>
public static class RegNetOnnxScoring
{
    /// <summary>ONNX input / pixel column used inside the pipeline.</summary>
    public const string PixelColumnName = "RegNetPixels";
    private const string ResizedColumnName = "RegNetResizedImage";
    private const string ProbabilitiesColumnName = "RegNetProbabilities";
    private const string IndexColumnName = "RegNetPredictedIndex";
    private const string HashedIndexColumnName = "RegNetPredictedIndexHash";

    /// <summary>
    /// A fitted <see cref="TransformerChain{TLastTransformer}"/> that reads an <see cref="MLImage"/> column of any size and writes
    /// <paramref name="scoreColumnName"/> (<c>Vector&lt;Single, C&gt;</c>, softmax probabilities in class order) and
    /// <paramref name="predictedLabelColumnName"/> (a key over <paramref name="classNames"/>, with KeyValues).
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">A classifier (numClasses &gt; 0) with trained weights; it is exported, not kept.</param>
    /// <param name="preprocessing">Normalisation, image size and crop fraction the weights expect.</param>
    /// <param name="classNames">One name per model output, in output order.</param>
    /// <param name="imageColumnName">The input MLImage column (e.g. from LoadImages).</param>
    /// <param name="scoreColumnName">Output probabilities column.</param>
    /// <param name="predictedLabelColumnName">Output key column.</param>
    /// <param name="foldBatchNorm">Export with BN folded into the convolutions (faster; same outputs within float rounding).</param>
    public static ITransformer CreateTransformer(MLContext mlContext, RegNetModel model, PreprocessingSpec preprocessing,
        IReadOnlyList<string> classNames, string imageColumnName = "Image", string scoreColumnName = "Score",
        string predictedLabelColumnName = "PredictedLabel", bool foldBatchNorm = true)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(preprocessing);
        ArgumentNullException.ThrowIfNull(classNames);
        if (model.NumClasses == 0)
            throw new ArgumentException("The model is headless (numClasses: 0); a scoring pipeline needs a classifier.", nameof(model));
        if (classNames.Count != model.NumClasses)
            throw new ArgumentException($"classNames has {classNames.Count} names but the model has {model.NumClasses} outputs; give one name per output, in order.", nameof(classNames));
        if (classNames.Any(string.IsNullOrEmpty) || classNames.Distinct(StringComparer.Ordinal).Count() != classNames.Count)
            throw new ArgumentException("classNames must be non-empty and distinct.", nameof(classNames));
        foreach (var (value, name) in new[] { (imageColumnName, nameof(imageColumnName)), (scoreColumnName, nameof(scoreColumnName)), (predictedLabelColumnName, nameof(predictedLabelColumnName)) })
            ArgumentException.ThrowIfNullOrWhiteSpace(value, name);
        if (scoreColumnName == predictedLabelColumnName)
            throw new ArgumentException("scoreColumnName and predictedLabelColumnName must differ.", nameof(predictedLabelColumnName));
        if (preprocessing.ImageSize < RegNetModel.MinimumInputSize || !(preprocessing.CropFraction > 0 && preprocessing.CropFraction <= 1))
            throw new ArgumentException($"preprocessing needs ImageSize ≥ {RegNetModel.MinimumInputSize} and CropFraction in (0, 1] (got {preprocessing.ImageSize}, {preprocessing.CropFraction}).", nameof(preprocessing));

        int size = preprocessing.ImageSize;
        int resize = Math.Max(size, preprocessing.ResizeShorterSide);
        var options = new OnnxExportOptions
        {
            InputName = PixelColumnName,
            IncludeLogits = false,
            ProbabilitiesOutputName = ProbabilitiesColumnName,
            PredictedIndexOutputName = IndexColumnName,
            ImageSize = size,
            CropFromSize = resize,
            BatchSize = 1,
            SqueezeBatchDimension = true,
            Normalization = preprocessing.Normalization,
            FoldBatchNorm = foldBatchNorm,
            DocString = $"{model.Spec.Name}: {classNames.Count} classes, raw RGB pixels {resize}x{resize} in",
        };
        var onnx = RegNetOnnxExporter.ExportToBytes(model, options);

        // The arg-max leaves ApplyOnnxModel as Vector<Int64, 1> (ML.NET cannot read rank-0 ONNX outputs), and no public
        // ML.NET transform takes one slot out of a vector except Hash with combine: true, which makes a scalar key.
        // So the index is hashed, and the hash of every class index (computed here by the same fitted transform,
        // checked collision-free) is mapped to the class name as a key with KeyValues.
        var (hash, hashes) = FitIndexHash(mlContext, classNames.Count);
        var pairs = classNames.Select((name, i) => new KeyValuePair<uint, string>(hashes[i], name));
        var pipeline = mlContext.Transforms.ResizeImages(ResizedColumnName, resize, resize, imageColumnName,
                ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center)
            .Append(mlContext.Transforms.ExtractPixels(PixelColumnName, ResizedColumnName))
            .Append(mlContext.Transforms.ApplyOnnxModel(new[] { ProbabilitiesColumnName, IndexColumnName }, new[] { PixelColumnName }, new MemoryStream(onnx)))
            .Append(mlContext.Transforms.CopyColumns(scoreColumnName, ProbabilitiesColumnName))
            .Append(hash)
            .Append(mlContext.Transforms.Conversion.MapValue(predictedLabelColumnName, pairs, HashedIndexColumnName, treatValuesAsKeyType: true))
            .Append(mlContext.Transforms.DropColumns(ResizedColumnName, PixelColumnName, ProbabilitiesColumnName, IndexColumnName, HashedIndexColumnName));

        var empty = mlContext.Data.LoadFromEnumerable(Array.Empty<ImageRow>(), ImageRow.Schema(imageColumnName));
        return pipeline.Fit(empty);
    }

    private static (HashingEstimator Hash, uint[] Hashes) FitIndexHash(MLContext mlContext, int classes)
    {
        for (uint seed = 314489979; seed < 314489979 + 64; seed++)
        {
            var estimator = mlContext.Transforms.Conversion.Hash(new HashingEstimator.ColumnOptions(
                HashedIndexColumnName, IndexColumnName, numberOfBits: 30, seed: seed, useOrderedHashing: false, maximumNumberOfInverts: 0, combine: true));
            var rows = mlContext.Data.LoadFromEnumerable(Enumerable.Range(0, classes).Select(i => new IndexRow { RegNetPredictedIndex = new long[] { i } }));
            var hashes = estimator.Fit(rows).Transform(rows).GetColumn<uint>(HashedIndexColumnName).ToArray();
            if (hashes.Distinct().Count() == classes) return (estimator, hashes); // hashing is data-independent: refitting gives the same map
        }
        throw new InvalidOperationException($"Could not find a collision-free 30-bit hash for {classes} class indices; this should not happen below millions of classes.");
    }

    private sealed class IndexRow
    {
        [VectorType(1)]
        public long[] RegNetPredictedIndex { get; set; } = Array.Empty<long>();
    }

    private sealed class ImageRow
    {
        [ImageType(1, 1)] // makes MLImage a known member type; the column type is replaced by one of unknown size below
        public MLImage? Image { get; set; }

        public static SchemaDefinition Schema(string column)
        {
            var schema = SchemaDefinition.Create(typeof(ImageRow));
            schema[0].ColumnName = column;
            schema[0].ColumnType = new ImageDataViewType();
            return schema;
        }
    }
}
