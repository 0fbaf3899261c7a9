using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.MLNet;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Onnx;
using Microsoft.ML.Runtime;
using static TorchSharp.torch;
using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet;

/// <summary>
/// A trained RegNet as an ML.NET transformer: adds <c>Score</c> (softmax probabilities, slot names = class names) and
/// <c>PredictedLabel</c> (a key of the training label's type). <c>Transform</c> scores in batches; a <c>PredictionEngine</c>
/// scores one row at a time through <see cref="GetRowToRowMapper"/>; both under <c>no_grad</c> in eval mode, after the one
/// evaluation transform (<see cref="EvaluationCrop"/>), which the saved model runs too.
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
        string? runPath, bool imageIsBytes)
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
        ImageIsBytes = imageIsBytes;
        Crop = new EvaluationCrop(Preprocessing);
        _device = Model.parameters().First().device;
        Model.eval();
        // The weights are copied now, while they are certainly alive, so that saving (which builds the ONNX model from the
        // copy on first use) touches no tensor and cannot fail half-way through a file, even after Dispose; a Fit that is
        // never saved does not build the ONNX model at all.
        _weightsForSaving = ExportedWeights.Read(Model);
    }

    private readonly object _exportLock = new();
    private ExportedWeights? _weightsForSaving;
    private byte[]? _scoringOnnx;

    /// <summary>True once the ONNX model for saving was built (on the first save or <see cref="ToOnnxScoringChain"/>).</summary>
    internal bool ScoringOnnxBuilt
    {
        get { lock (_exportLock) return _scoringOnnx is not null; }
    }

    private byte[] ScoringOnnx()
    {
        lock (_exportLock)
        {
            if (_scoringOnnx is null)
            {
                _scoringOnnx = RegNetOnnxScoring.ExportForScoring(Model, Preprocessing, ClassNames, weights: _weightsForSaving);
                _weightsForSaving = null; // the ONNX model holds them now
            }
            return _scoringOnnx;
        }
    }

    private readonly Device _device; // where the model lives; scoring moves inputs there (per batch and per row)

    /// <summary>The trained network (owned by this transformer).</summary>
    public RegNetModel Model { get; }
    /// <summary>Class names in key order (key k ↔ ClassNames[k − 1]).</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Normalisation, input size and crop applied before the network.</summary>
    public PreprocessingSpec Preprocessing { get; }
    /// <summary>Input column the transformer scores: images (<c>LoadImages</c>) or encoded bytes (<c>LoadRawImageBytes</c>), as in training.</summary>
    public string ImageColumnName { get; }
    /// <summary>Output column of softmax probabilities, one per class (slot names = <see cref="ClassNames"/>).</summary>
    public string ScoreColumnName { get; }
    /// <summary>Output column of the predicted class, a key of the training label's key type.</summary>
    public string PredictedLabelColumnName { get; }
    /// <summary>The run folder written during training, if any.</summary>
    public string? RunPath { get; }
    internal KeyDataViewType LabelType { get; }

    /// <summary>True: a <c>PredictionEngine</c> can score single rows.</summary>
    public bool IsRowToRowMapper => true;

    internal EvaluationCrop Crop { get; }

    /// <summary>The input schema plus the score and predicted-label columns.</summary>
    /// <param name="inputSchema">Schema of the data to score.</param>
    /// <exception cref="ArgumentException">The image column is missing, is neither an image nor a byte vector, or is of the other kind than in training (images vs. encoded bytes).</exception>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        var image = inputSchema.GetColumnOrNull(ImageColumnName)
            ?? throw new ArgumentException($"The input has no image column '{ImageColumnName}'.", nameof(inputSchema));
        bool bytes = ImageColumns.IsEncodedBytes(image.Type)
            ?? throw new ArgumentException($"Column '{ImageColumnName}' has type {image.Type}; expected an image or encoded image bytes.", nameof(inputSchema));
        if (bytes != ImageIsBytes)
            throw new ArgumentException(bytes
                ? $"Column '{ImageColumnName}' holds encoded bytes, but this model was trained on images (LoadImages); load the images the same way."
                : $"Column '{ImageColumnName}' holds images, but this model was trained on encoded bytes (LoadRawImageBytes); load the images the same way.", nameof(inputSchema));
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

    /// <summary>Scores <paramref name="input"/> lazily, in batches of <see cref="ScoringBatchSize"/> images, when its rows are read.</summary>
    /// <param name="input">Data with the image column.</param>
    /// <returns>The input with the score and predicted-label columns added.</returns>
    /// <exception cref="ObjectDisposedException">The transformer was disposed.</exception>
    /// <exception cref="ArgumentException">The input's image column does not fit (see <see cref="GetOutputSchema"/>).</exception>
    public IDataView Transform(IDataView input)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(input);
        return new ScoredDataView(this, input, GetOutputSchema(input.Schema));
    }

    /// <summary>Scores one row at a time (what <c>CreatePredictionEngine</c> uses); <see cref="Transform"/> scores in batches.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new RegNetRowMapper(this, inputSchema, GetOutputSchema(inputSchema));
    }

    /// <summary>The input with the evaluation transform's ML.NET steps applied (adds the resized image column).</summary>
    internal ITransformer FitEvaluationPreprocessing(DataViewSchema inputSchema) =>
        EvaluationPreprocessing.Fit(Crop, inputSchema, ImageColumnName, ImageIsBytes);

    /// <summary>
    /// Called by <c>mlContext.Model.Save</c>. ML.NET's persistence hooks are internal to other assemblies, so the
    /// transformer saves itself as the equivalent chain of ML.NET's own transformers (see <see cref="ToOnnxScoringChain"/>):
    /// the evaluation transform's resize, then the network as an embedded ONNX model scored by OnnxTransformer.
    /// <c>mlContext.Model.Load</c> therefore gives back that chain (a <c>TransformerChain</c> in place of this transformer):
    /// the same Score (with slot names) and PredictedLabel columns, no TorchSharp needed. The weights were copied when the
    /// transformer was made, so saving needs nothing that can fail (it works after <see cref="Dispose"/> too). To train further, pass the saved zip as
    /// <c>StartingWeightsPath</c>.
    /// </summary>
    public void Save(ModelSaveContext ctx) => ((ICanSaveModel)ToOnnxScoringChain(new MLContext())).Save(ctx);

    /// <summary>
    /// The same scoring as a chain of ML.NET transformers around an ONNX export of the network. For a model on encoded
    /// bytes (<c>LoadRawImageBytes</c>) the chain starts with <see cref="RegNetImageBytesDecoder"/>, a custom mapping: a
    /// process that loads it calls <c>mlContext.ComponentCatalog.RegisterAssembly(typeof(RegNetImageBytesDecoder).Assembly)</c> first.
    /// </summary>
    public ITransformer ToOnnxScoringChain(MLContext mlContext) =>
        RegNetOnnxScoring.CreateTransformer(mlContext, ScoringOnnx(), Preprocessing, ClassNames, ImageColumnName, ImageIsBytes,
            ScoreColumnName, PredictedLabelColumnName);

    /// <summary>True when the image column holds encoded bytes (<c>LoadRawImageBytes</c>) rather than images.</summary>
    public bool ImageIsBytes { get; }

    /// <summary>Frees the network's native tensors; the transformer cannot score afterwards.</summary>
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
        var input = _device.type == TorchSharp.DeviceType.CPU ? images : images.to(_device);
        return nn.functional.softmax(Model.call(input), 1).cpu().contiguous().data<float>().ToArray();
    }

    /// <summary>Scores one preprocessed image (3×H×W floats).</summary>
    internal float[] ScoreOne(float[] chw)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var input = tensor(chw, new long[] { 1, 3, Preprocessing.ImageSize, Preprocessing.ImageSize }, device: _device);
        return nn.functional.softmax(Model.call(input), 1).cpu().contiguous().data<float>().ToArray();
    }

    // Reads the resized column that FitEvaluationPreprocessing adds; the pipeline then takes the centred window.
    internal ImageBatchPipeline CreateScoringPipeline() => new(new ImageBatchPipelineOptions
    {
        ImageColumnName = EvaluationPreprocessing.ResizedColumnName, LabelColumnName = null, BatchSize = ScoringBatchSize, ImageSize = Preprocessing.ImageSize,
        Augmentation = AugmentationOptions.Evaluation(Preprocessing.CropFraction), Normalization = Preprocessing.Normalization,
        Shuffle = false, BadImagePolicy = BadImagePolicy.FailOnBadImage, WorkerThreads = Math.Max(1, Environment.ProcessorCount),
    });

    private const string AnnotationSlotNames = "SlotNames";
    private const string AnnotationTrainingLabelValues = "TrainingLabelValues";
    private const string AnnotationScoreColumnKind = "ScoreColumnKind";
    private const string AnnotationScoreValueKind = "ScoreValueKind";
}
