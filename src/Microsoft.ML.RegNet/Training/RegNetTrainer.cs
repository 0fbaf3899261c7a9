using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Distributed;
using Microsoft.ML.RegNet.Runtime;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet;

/// <summary>
/// Trains a RegNet image classifier end to end inside an ML.NET pipeline.
/// </summary>
/// <remarks>
/// | Input / output | Type |
/// |---|---|
/// | Label (input) | key type (use <c>MapValueToKey</c>) |
/// | Image (input) | <c>MLImage</c> (<c>LoadImages</c>) or variable-size vector of Byte (<c>LoadRawImageBytes</c>) |
/// | Score (output) | vector of Single, softmax probabilities, slot names = class names |
/// | PredictedLabel (output) | key type of the label |
///
/// Streams the data through cursors (a data set larger than memory trains), decodes and augments on worker threads while
/// the model trains, and with a workspace writes a run folder (config, metrics, TensorBoard, curves, checkpoints).
/// Exportable to ONNX through the saved model.
/// </remarks>
public sealed partial class RegNetTrainer : IEstimator<RegNetTransformer>
{
    private readonly IHostEnvironment _env;
    private readonly IHost _host;

    internal RegNetTrainer(IHostEnvironment env, Options options)
    {
        _env = env ?? throw new ArgumentNullException(nameof(env));
        TrainerOptions = options ?? throw new ArgumentNullException(nameof(options));
        _host = env.Register(nameof(RegNetTrainer));
        Validate(options);
    }

    /// <summary>The options this trainer was created with.</summary>
    public Options TrainerOptions { get; }

    /// <summary>The architecture that will be trained (with <see cref="Options.Pretrained"/>, the width rounding of those weights).</summary>
    public RegNetSpec Spec => TrainerOptions.Spec ?? SpecOf(TrainerOptions);

    private static RegNetSpec SpecOf(Options o)
    {
        if (o.Pretrained is not { } source) return RegNetSpec.FromName(o.Architecture);
        var file = PretrainedCatalog.File(o.Architecture, source);
        return RegNetSpec.FromName(file.Model, file.Rounding);
    }

    // The user's normalisation, else the pretrained weights' own (a property of the catalog entry, so a resumed run, which
    // loads no starting weights, resolves the same), else ImageNet mean/std.
    internal static ImageNormalization NormalizationOf(Options o) =>
        o.Normalization ?? (o.Pretrained is { } source ? PretrainedCatalog.File(o.Architecture, source).Preprocessing.Normalization : ImageNormalization.ImageNet);

    private static void Validate(Options o)
    {
        static void Require(bool ok, string message) { if (!ok) throw new ArgumentException(message, "options"); }
        _ = o.Spec ?? SpecOf(o);
        if (o.Pretrained is { } source)
            Require(o.Spec is null && o.StartingWeightsPath is null && o.StartingModel is null,
                $"Pretrained = {source} loads the published weights of Architecture ('{o.Architecture}'); it cannot be combined with Spec, " +
                "StartingWeightsPath or StartingModel. Set only one of them.");
        ComputeDevice.Validate(o.Device);
        Require(o.ImageSize >= RegNetModel.MinimumInputSize, $"ImageSize must be at least {RegNetModel.MinimumInputSize} (got {o.ImageSize}).");
        Require(o.BatchSize >= 1, $"BatchSize must be at least 1 (got {o.BatchSize}).");
        Require(o.MaxEpochs >= 1, $"MaxEpochs must be at least 1 (got {o.MaxEpochs}).");
        Require(o.LearningRate > 0 && double.IsFinite(o.LearningRate), $"LearningRate must be positive (got {o.LearningRate}).");
        Require(o.WeightDecay >= 0, $"WeightDecay must be ≥ 0 (got {o.WeightDecay}).");
        Require(o.WarmupEpochs >= 0 && o.WarmupFactor > 0 && o.WarmupFactor <= 1, "WarmupEpochs must be ≥ 0 and WarmupFactor in (0, 1].");
        Require(o.LabelSmoothing is >= 0 and < 1, $"LabelSmoothing must be in [0, 1) (got {o.LabelSmoothing}).");
        Require(o.ValidationFraction is null or (> 0 and < 1), $"ValidationFraction must be in (0, 1) (got {o.ValidationFraction}).");
        Require(o.FreezeStages is >= 0 and <= 4, $"FreezeStages must be 0…4 (got {o.FreezeStages}).");
        Require(o.UnfreezeAfterEpochs is null || (o.UnfreezeAfterEpochs >= 1 && (o.FreezeStem || o.FreezeStages > 0)),
            $"UnfreezeAfterEpochs ({o.UnfreezeAfterEpochs}) unfreezes what FreezeStem or FreezeStages froze after at least one epoch: " +
            "set it to 1 or more together with FreezeStages (or FreezeStem), or leave it null.");
        Require(o.LayerDecay is null or (> 0 and <= 1), $"LayerDecay must be in (0, 1] (got {o.LayerDecay}); 0.75 is a common choice.");
        Require(o.LogEveryNSteps >= 1, "LogEveryNSteps must be at least 1.");
        Require(o.CachedAugmentedViews >= 0, $"CachedAugmentedViews must be ≥ 0 (got {o.CachedAugmentedViews}); 0 keeps no augmented views.");
        Require(o.FrozenTrunkCacheMegabytes >= 0, $"FrozenTrunkCacheMegabytes must be ≥ 0 (got {o.FrozenTrunkCacheMegabytes}); 0 keeps the frozen trunk's outputs on disk only.");
        Require(o.DecodedImageCacheMegabytes >= 0, $"DecodedImageCacheMegabytes must be ≥ 0 (got {o.DecodedImageCacheMegabytes}); 0 turns the image cache off.");
        o.Augmentation.Validate();
        o.Mixing.Validate();
    }

    /// <summary>Describes the output columns for an input schema.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var o = TrainerOptions;
        var label = inputSchema.FirstOrDefault(c => c.Name == o.LabelColumnName);
        if (label.Name is null) throw new ArgumentException($"Label column '{o.LabelColumnName}' not found.", nameof(inputSchema));
        if (!label.IsKey) throw new ArgumentException(LabelNotKeyMessage(o.LabelColumnName, label.ItemType), nameof(inputSchema));
        if (!inputSchema.Any(c => c.Name == o.ImageColumnName)) throw new ArgumentException($"Image column '{o.ImageColumnName}' not found.", nameof(inputSchema));
        var columns = inputSchema.ToDictionary(c => c.Name);
        columns[o.ScoreColumnName] = MLNetInternals.SchemaColumn(o.ScoreColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false,
            MLNetInternals.TextVectorAnnotations("SlotNames", "TrainingLabelValues"));
        columns[o.PredictedLabelColumnName] = MLNetInternals.SchemaColumn(o.PredictedLabelColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true,
            MLNetInternals.TextVectorAnnotations(InputColumns.AnnotationUtilsKeyValues));
        return new SchemaShape(columns.Values);
    }

    /// <summary>Trains on <paramref name="input"/> and returns the scoring transformer.</summary>
    public RegNetTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var o = TrainerOptions;
        // Cancelled before anything was trained: there is no model to return.
        o.CancellationToken.ThrowIfCancellationRequested();
        TorchRuntime.Configure();
        var columns = InputColumns.Resolve(input.Schema, o.LabelColumnName, o.ImageColumnName, "training data");
        IDataView train = input;
        IDataView? validation = o.ValidationSet;
        int seed = o.Seed ?? MLNetInternals.Seed(_env) ?? 1;
        if (validation is not null)
        {
            var v = InputColumns.Resolve(validation.Schema, o.LabelColumnName, o.ImageColumnName, "validation set");
            if (v.NumberOfClasses != columns.NumberOfClasses || !v.ClassNames.SequenceEqual(columns.ClassNames))
                throw new ArgumentException(
                    $"The validation set's label has {v.NumberOfClasses} key values ({string.Join(", ", v.ClassNames.Take(5))}…) but the training data's has " +
                    $"{columns.NumberOfClasses} ({string.Join(", ", columns.ClassNames.Take(5))}…). Map both with the same MapValueToKey transformer (fit it once, apply it to both).");
        }
        else if (o.ValidationFraction is { } fraction)
        {
            var split = new MLContext(seed).Data.TrainTestSplit(input, fraction, seed: seed);
            (train, validation) = (split.TrainSet, split.TestSet);
        }

        using var channel = _host.Start("Training");
        var device = ComputeDevice.Resolve(o.Device, MLNetInternals.GpuDeviceId(_env), MLNetInternals.FallbackToCpu(_env),
            warning => channel.Warning(MessageSensitivity.None, warning));
        using var parallel = DataParallel.Start(o.DataParallel);
        if (parallel is { Size: > 1 } && device.type != DeviceType.CPU)
            throw new NotSupportedException(
                $"Data-parallel training runs on the CPU only (MPI reduces host memory); this Fit asks for {device}. Set Device = \"cpu\" or DataParallel = Off.");
        if (o.NumberOfThreads is { } threads) torch.set_num_threads(threads);
        // Ranks sharing a machine share its cores.
        else if (parallel is { Size: > 1 }) torch.set_num_threads(Math.Max(1, Environment.ProcessorCount / DataParallelEnvironment.LocalWorldSize));
        var spec = Spec;
        // This Fit's own random state: the process-wide generator is shared by concurrent Fits (README, "Determinism").
        using var generator = new Generator(unchecked((ulong)seed));
        TrainingLoop? loop = null;
        try
        {
            // The loop builds the model once its first epoch is decoding.
            loop = new TrainingLoop(this, () => NewModel(spec, columns.NumberOfClasses, generator, device), columns, seed, channel, parallel);
            loop.Run(train, validation);
            channel.Info(MessageSensitivity.None, $"Training finished: {loop.Summary}");
            return new RegNetTransformer(_env, loop.Model!, columns.LabelType, columns.ClassNames, NormalizationOf(o), o.ImageSize, o.CropFraction,
                o.ImageColumnName, o.ScoreColumnName, o.PredictedLabelColumnName, loop.RunPath, columns.ImageIsBytes);
        }
        catch (Exception e)
        {
            loop?.Model?.Dispose();
            // One rank failing would leave the others waiting in a collective forever: end the job with the message. A
            // cancellation before the first step is agreed by all ranks (they all throw it), so nobody is left waiting.
            if (parallel is { Size: > 1 } && e is not OperationCanceledException) parallel.Abort(e);
            throw;
        }
    }

    // Initialised on the CPU from this Fit's generator (the same weights on every device), then moved once.
    private RegNetModel NewModel(RegNetSpec spec, int numberOfClasses, Generator generator, Device device)
    {
        var model = new RegNetModel(spec, numberOfClasses, TrainerOptions.ZeroInitLastBatchNorm, generator);
        try
        {
            return model.to(device);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    internal static string LabelNotKeyMessage(string column, DataViewType type) =>
        $"Label column '{column}' has type {type}, but RegNet needs a key type. Add mlContext.Transforms.Conversion.MapValueToKey(\"{column}\") before the trainer " +
        "(and MapKeyToValue(\"PredictedLabel\") after it to get the class names back).";
}
