using Google.Protobuf;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.MLNet;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.Transforms;
using Microsoft.ML.Transforms.Image;
using Microsoft.ML.RegNet.Onnx;

namespace Microsoft.ML.RegNet;

/// <summary>
/// Builds an ML.NET scoring pipeline for a <see cref="RegNetModel"/> out of ML.NET's own transformers
/// (ResizeImages → ExtractPixels → ApplyOnnxModel → CopyColumns → Hash → MapValue → DropColumns, with a decoding custom
/// mapping first for encoded-image byte columns), so the result can be saved with <c>mlContext.Model.Save</c> and loaded
/// with <c>mlContext.Model.Load</c> by any application that references Microsoft.ML, Microsoft.ML.ImageAnalytics and
/// Microsoft.ML.OnnxTransformer; the ONNX bytes are embedded in the zip.
/// </summary>
/// <remarks>
/// <para>Preprocessing is the evaluation transform (<see cref="EvaluationCrop"/>): ML.NET's resize runs in the chain, the
/// ONNX graph slices the centred window and normalises. In-process scoring runs the same ML.NET resize, so both agree.</para>
/// <para>The score column carries the class names as slot names (read by OnnxTransformer from the graph).</para>
/// <para>Scoring is one row per ONNX Runtime call (ApplyOnnxModel's design); for throughput use <see cref="RegNetOnnxSession"/>.</para>
/// </remarks>
public static class RegNetOnnxScoring
{
    /// <summary>ONNX input / pixel column used inside the pipeline.</summary>
    public const string PixelColumnName = "RegNetPixels";
    private const string ProbabilitiesColumnName = "RegNetProbabilities";
    private const string IndexColumnName = "RegNetPredictedIndex";
    private const string HashedIndexColumnName = "RegNetPredictedIndexHash";

    /// <summary>
    /// A fitted <see cref="TransformerChain{TLastTransformer}"/> that reads an <see cref="MLImage"/> column of any size and writes
    /// <paramref name="scoreColumnName"/> (<c>Vector&lt;Single, C&gt;</c>, softmax probabilities in class order, slot names =
    /// class names) and <paramref name="predictedLabelColumnName"/> (a key over <paramref name="classNames"/>, with KeyValues).
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">A classifier (numberOfClasses &gt; 0) with trained weights; it is exported, not kept.</param>
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
        var onnx = ExportForScoring(model, preprocessing, classNames, foldBatchNorm);
        return CreateTransformer(mlContext, onnx, preprocessing, classNames, imageColumnName, imageIsBytes: false, scoreColumnName, predictedLabelColumnName);
    }

    /// <summary>The network as the scoring chain embeds it: raw pixels of the resized square in, probabilities and arg-max out.</summary>
    internal static byte[] ExportForScoring(RegNetModel model, PreprocessingSpec preprocessing, IReadOnlyList<string> classNames, bool foldBatchNorm = true,
        ExportedWeights? weights = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(preprocessing);
        ArgumentNullException.ThrowIfNull(classNames);
        if (model.NumberOfClasses == 0)
            throw new ArgumentException("The model is headless (numberOfClasses: 0); a scoring pipeline needs a classifier.", nameof(model));
        if (classNames.Count != model.NumberOfClasses)
            throw new ArgumentException($"classNames has {classNames.Count} names but the model has {model.NumberOfClasses} outputs; give one name per output, in order.", nameof(classNames));
        if (classNames.Any(string.IsNullOrEmpty) || classNames.Distinct(StringComparer.Ordinal).Count() != classNames.Count)
            throw new ArgumentException("classNames must be non-empty and distinct.", nameof(classNames));
        if (preprocessing.ImageSize < RegNetModel.MinimumInputSize || !(preprocessing.CropFraction > 0 && preprocessing.CropFraction <= 1))
            throw new ArgumentException($"preprocessing needs ImageSize ≥ {RegNetModel.MinimumInputSize} and CropFraction in (0, 1] (got {preprocessing.ImageSize}, {preprocessing.CropFraction}).", nameof(preprocessing));
        int resize = preprocessing.ResizeShorterSide;
        return RegNetOnnxExporter.Build(model, new OnnxExportOptions
        {
            InputName = PixelColumnName,
            IncludeLogits = false,
            ProbabilitiesOutputName = ProbabilitiesColumnName,
            PredictedIndexOutputName = IndexColumnName,
            ClassNames = classNames,
            ImageSize = preprocessing.ImageSize,
            CropFromSize = resize,
            BatchSize = 1,
            SqueezeBatchDimension = true,
            Normalization = preprocessing.Normalization,
            FoldBatchNorm = foldBatchNorm,
            DocString = $"{model.Spec.Name}: {classNames.Count} classes, raw RGB pixels {resize}x{resize} in",
        }, weights).ToByteArray();
    }

    /// <summary>The chain around an ONNX model made by <see cref="ExportForScoring"/>.</summary>
    internal static ITransformer CreateTransformer(MLContext mlContext, byte[] onnx, PreprocessingSpec preprocessing, IReadOnlyList<string> classNames,
        string imageColumnName, bool imageIsBytes, string scoreColumnName, string predictedLabelColumnName)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        foreach (var (value, name) in new[] { (imageColumnName, nameof(imageColumnName)), (scoreColumnName, nameof(scoreColumnName)), (predictedLabelColumnName, nameof(predictedLabelColumnName)) })
            ArgumentException.ThrowIfNullOrWhiteSpace(value, name);
        if (scoreColumnName == predictedLabelColumnName)
            throw new ArgumentException("scoreColumnName and predictedLabelColumnName must differ.", nameof(predictedLabelColumnName));

        // The arg-max leaves ApplyOnnxModel as Vector<Int64, 1> (ML.NET cannot read rank-0 ONNX outputs), and no public
        // ML.NET transform takes one slot out of a vector except Hash with combine: true, which makes a scalar key.
        // So the index is hashed, and the hash of every class index (computed here by the same fitted transform,
        // checked collision-free) is mapped to the class name as a key with KeyValues.
        var (hash, hashes) = FitIndexHash(mlContext, classNames.Count);
        var pairs = classNames.Select((name, i) => new KeyValuePair<uint, string>(hashes[i], name));
        var crop = new EvaluationCrop(preprocessing);
        var pipeline = EvaluationPreprocessing.Estimator(mlContext, crop, imageColumnName, imageIsBytes)
            .Append(mlContext.Transforms.ExtractPixels(PixelColumnName, EvaluationPreprocessing.ResizedColumnName))
            .Append(mlContext.Transforms.ApplyOnnxModel(new[] { ProbabilitiesColumnName, IndexColumnName }, new[] { PixelColumnName }, new MemoryStream(onnx)))
            .Append(mlContext.Transforms.CopyColumns(scoreColumnName, ProbabilitiesColumnName))
            .Append(hash)
            .Append(mlContext.Transforms.Conversion.MapValue(predictedLabelColumnName, pairs, HashedIndexColumnName, treatValuesAsKeyType: true))
            .Append(mlContext.Transforms.DropColumns(EvaluationPreprocessing.IntermediateColumns(imageIsBytes)
                .Concat(new[] { PixelColumnName, ProbabilitiesColumnName, IndexColumnName, HashedIndexColumnName }).ToArray()));

        var schema = new DataViewSchema.Builder();
        schema.AddColumn(imageColumnName, imageIsBytes ? new VectorDataViewType(NumberDataViewType.Byte) : new ImageDataViewType());
        return pipeline.Fit(new EvaluationPreprocessing.EmptyDataView(schema.ToSchema()));
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
}
