using Microsoft.ML.RegNet.Data.MLNet;
using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Onnx;

/// <summary>
/// <c>mlContext.Transforms.RegNetFeatures(...)</c>: a headless network's pooled features as ML.NET's own estimators (the
/// evaluation transform's resize → ExtractPixels → ApplyOnnxModel over the exported trunk, which slices the centred window
/// and normalises), like ML.NET's DnnFeaturizeImage. Built of ML.NET's transformers only, a pipeline containing it saves
/// and loads with <c>mlContext.Model.Save</c>/<c>Load</c>, the ONNX bytes embedded in the zip.
/// </summary>
internal static class FeaturizerChain
{
    private const string PixelColumnName = "RegNetFeaturePixels";

    /// <summary>The estimator chain for <paramref name="model"/>'s trunk (its classifier, if any, is left out).</summary>
    public static IEstimator<ITransformer> Create(RegNetModel model, PreprocessingSpec preprocessing, string outputColumnName, string inputColumnName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(outputColumnName);
        ArgumentException.ThrowIfNullOrWhiteSpace(inputColumnName);
        if (preprocessing.ImageSize < RegNetModel.MinimumInputSize)
            throw new ArgumentException($"imageSize must be at least {RegNetModel.MinimumInputSize} (got {preprocessing.ImageSize}).", nameof(preprocessing));
        byte[] onnx;
        using (var headless = Headless(model))
        {
            onnx = RegNetOnnxExporter.ExportToBytes(headless, new OnnxExportOptions
            {
                InputName = PixelColumnName, OutputName = outputColumnName, ImageSize = preprocessing.ImageSize,
                CropFromSize = preprocessing.ResizeShorterSide, BatchSize = 1, SqueezeBatchDimension = true,
                Normalization = preprocessing.Normalization, FoldBatchNorm = true,
                DocString = $"{model.Spec.Name}: pooled features ({model.Spec.FeatureWidth}), raw RGB pixels {preprocessing.ResizeShorterSide}² in",
            });
        }
        // The estimators are data-independent; ML.NET's own context builds them, as for the scoring chain.
        var ml = new MLContext();
        return EvaluationPreprocessing.Estimator(ml, new EvaluationCrop(preprocessing), inputColumnName, imageIsBytes: false)
            .Append(ml.Transforms.ExtractPixels(PixelColumnName, EvaluationPreprocessing.ResizedColumnName))
            .Append(ml.Transforms.ApplyOnnxModel(new[] { outputColumnName }, new[] { PixelColumnName }, new MemoryStream(onnx)))
            .Append(ml.Transforms.DropColumns(EvaluationPreprocessing.IntermediateColumns(imageIsBytes: false).Append(PixelColumnName).ToArray()));
    }

    // The same stem and stages without the classifier, with the model's padding.
    private static RegNetModel Headless(RegNetModel model)
    {
        var headless = new RegNetModel(model.Spec, numberOfClasses: 0) { Padding = model.Padding };
        try
        {
            var trunk = model.state_dict().Where(kv => !kv.Key.StartsWith("head.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
            var (missing, unexpected) = headless.load_state_dict(trunk, strict: true);
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new InvalidOperationException($"The trunk of {model.Spec.Name} did not fit its headless copy (missing {string.Join(", ", missing)}; unexpected {string.Join(", ", unexpected)}).");
            return headless;
        }
        catch
        {
            headless.Dispose();
            throw;
        }
    }
}
