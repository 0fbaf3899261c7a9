using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Microsoft.ML.RegNet.Data;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Models;
using Microsoft.ML.Runtime;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Training;

/// <summary>
/// A trained RegNet as an ML.NET transformer: adds <c>Score</c> (softmax probabilities, slot names = class names) and
/// <c>PredictedLabel</c> (a key of the training label's type). Scoring runs in batches under <c>no_grad</c> in eval mode.
/// </summary>
public sealed class RegNetTransformer : ITransformer, IDisposable
{
    /// <summary>Images per forward pass when scoring.</summary>
    public const int ScoringBatchSize = 32;

    private readonly IHostEnvironment _env;
    private readonly VBuffer<ReadOnlyMemory<char>> _classNames;
    private bool _disposed;

    internal RegNetTransformer(IHostEnvironment env, RegNetModel model, KeyDataViewType labelType, IReadOnlyList<string> classNames,
        ImageNormalization normalization, int imageSize, double cropFraction, string imageColumn, string scoreColumn, string predictedLabelColumn,
        string? runPath)
    {
        _env = env;
        Model = model;
        LabelType = labelType;
        ClassNames = classNames.ToArray();
        _classNames = new VBuffer<ReadOnlyMemory<char>>(ClassNames.Count, ClassNames.Select(n => n.AsMemory()).ToArray());
        Preprocessing = new PreprocessingSpec(normalization, imageSize, cropFraction);
        ImageColumnName = imageColumn;
        ScoreColumnName = scoreColumn;
        PredictedLabelColumnName = predictedLabelColumn;
        RunPath = runPath;
        Model.eval();
    }

    /// <summary>The trained network (owned by this transformer).</summary>
    public RegNetModel Model { get; }
    /// <summary>Class names in key order (key k ↔ ClassNames[k − 1]).</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Normalisation, input size and crop applied before the network.</summary>
    public PreprocessingSpec Preprocessing { get; }
    public string ImageColumnName { get; }
    public string ScoreColumnName { get; }
    public string PredictedLabelColumnName { get; }
    /// <summary>The run folder written during training, if any.</summary>
    public string? RunPath { get; }
    internal KeyDataViewType LabelType { get; }

    public bool IsRowToRowMapper => false;

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        var image = inputSchema.GetColumnOrNull(ImageColumnName)
            ?? throw new ArgumentException($"The input has no image column '{ImageColumnName}'.", nameof(inputSchema));
        bool bytes = image.Type is VectorDataViewType { ItemType: NumberDataViewType n } && n.RawType == typeof(byte);
        if (!bytes && image.Type is not ImageDataViewType)
            throw new ArgumentException($"Column '{ImageColumnName}' has type {image.Type}; expected an image or encoded image bytes.", nameof(inputSchema));

        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        var slotNames = new DataViewSchema.Annotations.Builder();
        var namesType = new VectorDataViewType(TextDataViewType.Instance, ClassNames.Count);
        slotNames.Add(AnnotationSlotNames, namesType, (ref VBuffer<ReadOnlyMemory<char>> v) => _classNames.CopyTo(ref v));
        slotNames.Add(AnnotationTrainingLabelValues, namesType, (ref VBuffer<ReadOnlyMemory<char>> v) => _classNames.CopyTo(ref v));
        slotNames.Add(AnnotationScoreColumnKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = "MulticlassClassification".AsMemory());
        slotNames.Add(AnnotationScoreValueKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = "Score".AsMemory());
        builder.AddColumn(ScoreColumnName, new VectorDataViewType(NumberDataViewType.Single, ClassNames.Count), slotNames.ToAnnotations());
        var keyValues = new DataViewSchema.Annotations.Builder();
        keyValues.Add(InputColumns.AnnotationUtilsKeyValues, namesType, (ref VBuffer<ReadOnlyMemory<char>> v) => _classNames.CopyTo(ref v));
        builder.AddColumn(PredictedLabelColumnName, new KeyDataViewType(typeof(uint), ClassNames.Count), keyValues.ToAnnotations());
        return builder.ToSchema();
    }

    public IDataView Transform(IDataView input)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(input);
        return new ScoredDataView(this, input, GetOutputSchema(input.Schema));
    }

    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) =>
        throw new NotSupportedException("RegNetTransformer scores in batches and is not a row-to-row mapper; use Transform or a PredictionEngine.");

    /// <summary>
    /// Called by <c>mlContext.Model.Save</c>. ML.NET's persistence hooks are internal to other assemblies, so the
    /// transformer saves itself as the equivalent chain of ML.NET's own transformers (see <see cref="ToOnnxScoringChain"/>):
    /// the network as an embedded ONNX model scored by OnnxTransformer. <c>mlContext.Model.Load</c> therefore gives back
    /// that chain (a <c>TransformerChain</c> in place of this transformer): same Score and PredictedLabel columns, no
    /// TorchSharp needed. To train further, recover the weights with <c>RegNetOnnxImporter</c>.
    /// </summary>
    public void Save(ModelSaveContext ctx)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ((ICanSaveModel)ToOnnxScoringChain(new MLContext())).Save(ctx);
    }

    /// <summary>The same scoring as a chain of ML.NET transformers around an ONNX export of the network.</summary>
    /// <exception cref="NotSupportedException">The image column holds encoded bytes: ML.NET has no public transformer that decodes them.</exception>
    public ITransformer ToOnnxScoringChain(MLContext mlContext)
    {
        if (ImageIsBytes)
            throw new NotSupportedException(
                $"This model reads encoded image bytes ('{ImageColumnName}' from LoadRawImageBytes); a saved ML.NET model can only decode images with " +
                "LoadImages. Train with mlContext.Transforms.LoadImages instead, or export the network with RegNetOnnxExporter.");
        return Onnx.RegNetOnnxScoring.CreateTransformer(mlContext, Model, Preprocessing, ClassNames, ImageColumnName, ScoreColumnName, PredictedLabelColumnName);
    }

    internal bool ImageIsBytes { get; set; }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Model.Dispose();
    }

    /// <summary>Scores a batch of preprocessed images (N×3×H×W): softmax probabilities N×C.</summary>
    internal float[] ScoreBatch(Tensor images)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Model.eval();
        return nn.functional.softmax(Model.call(images), 1).contiguous().data<float>().ToArray();
    }

    internal ImageBatchPipeline CreateScoringPipeline() => new(new ImageBatchPipelineOptions
    {
        ImageColumn = ImageColumnName, LabelColumn = null, BatchSize = ScoringBatchSize, ImageSize = Preprocessing.ImageSize,
        Augmentation = AugmentationOptions.Evaluation(Preprocessing.CropFraction), Normalization = Preprocessing.Normalization,
        Shuffle = false, BadImagePolicy = BadImagePolicy.FailOnBadImage, WorkerThreads = Math.Max(1, Environment.ProcessorCount),
    });

    private const string AnnotationSlotNames = "SlotNames";
    private const string AnnotationTrainingLabelValues = "TrainingLabelValues";
    private const string AnnotationScoreColumnKind = "ScoreColumnKind";
    private const string AnnotationScoreValueKind = "ScoreValueKind";
}
