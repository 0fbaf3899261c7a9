using Microsoft.ML.RegNet.Modules;
using Microsoft.ML.RegNet.Weights.Formats;
using Microsoft.ML.RegNet.Weights.Layouts;
using static TorchSharp.torch;
using Microsoft.ML.RegNet.Weights;

namespace Microsoft.ML.RegNet;

/// <summary>How <see cref="RegNetWeights.Load"/> treats a file that does not match the model exactly.</summary>
public sealed record WeightLoadOptions
{
    /// <summary>Throw <see cref="WeightMismatchException"/> when a backbone tensor is missing, unexpected or has another shape
    /// (default). When false, what does not match is skipped and listed in the report.</summary>
    public bool Strict { get; init; } = true;

    /// <summary>When the file's classifier has another class count than the model, or the file has none (<c>_notop</c>),
    /// re-initialise the model's classifier (N(0, 0.01), zero bias) and report it instead of failing (default true):
    /// the fine-tuning path.</summary>
    public bool ReinitializeClassifierOnMismatch { get; init; } = true;

    /// <summary>Seed of the re-initialised classifier's random weights. They are drawn from a generator of their own seeded
    /// with it, never from libtorch's process-wide one, so the same file, model and seed give the same classifier on any
    /// thread (default 0).</summary>
    public int ClassifierSeed { get; init; }

    /// <summary>Native pycls weights expect BGR input. When true (default) the stem convolution's input channels are
    /// flipped so the model takes RGB (as timm does for its copies) and the preprocessing is plain ImageNet RGB; when
    /// false the weights are kept and the returned preprocessing says BGR.</summary>
    public bool ConvertBgrToRgb { get; init; } = true;

    /// <summary>Force a PyTorch layout (timm, torchvision, pycls) instead of detecting it from marker keys.</summary>
    public StateDictLayout? Layout { get; init; }

    /// <summary>The defaults: strict, classifier re-initialised on a class-count mismatch, pycls BGR converted to RGB, layout detected.</summary>
    public static WeightLoadOptions Default { get; } = new();
}

/// <summary>What happened to the model's classifier during a load.</summary>
public enum ClassifierStatus
{
    /// <summary>Loaded from the file.</summary>
    Loaded,
    /// <summary>Re-initialised: the file has none or one with another class count.</summary>
    Reinitialized,
    /// <summary>The model is headless; any classifier in the file was ignored.</summary>
    NotInModel,
}

/// <summary>The result of loading a weight file: tensors, and everything that travels with the weights.</summary>
/// <param name="Path">The file.</param>
/// <param name="Format">Detected format.</param>
/// <param name="Layout">Layout the names were read in (<c>timm</c>, <c>torchvision</c>, <c>pycls</c>, <c>keras (by name)</c>, …).</param>
/// <param name="Tensors">Per-tensor report (loaded, missing, unexpected, shape mismatches; names in the file's layout).</param>
/// <param name="Preprocessing">The preprocessing these weights expect; apply it when training or scoring.</param>
/// <param name="Padding">The padding style now set on the model (<see cref="PaddingStyle.TensorFlowSame"/> for Keras weights).</param>
/// <param name="Classifier">What happened to the classifier.</param>
/// <param name="ConvertedBgrToRgb">True when pycls's BGR stem was flipped so the model takes RGB.</param>
/// <param name="Notes">Human-readable notes: head re-initialisation, BGR→RGB conversion, Keras pairing, etc.</param>
/// <param name="ClassNames">Class names stored in the file (own format), else empty.</param>
/// <param name="Metadata">File metadata (safetensors <c>__metadata__</c>), else empty.</param>
public sealed record WeightFileReport(
    string Path, WeightFormat Format, string Layout, WeightLoadReport Tensors, PreprocessingSpec Preprocessing,
    PaddingStyle Padding, ClassifierStatus Classifier, bool ConvertedBgrToRgb, IReadOnlyList<string> Notes, IReadOnlyList<string> ClassNames,
    IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>One line: file, format, layout, tensor report, classifier, preprocessing, padding and notes.</summary>
    public override string ToString() => $"{System.IO.Path.GetFileName(Path)} ({Format}, {Layout}): {Tensors}; classifier {Classifier}; " +
        $"preprocessing {Preprocessing.Normalization.Order} scale {Preprocessing.Normalization.Scale}; padding {Padding}" +
        (Notes.Count > 0 ? "; " + string.Join("; ", Notes) : "");
}

/// <summary>A model built from a file's own metadata, with its load report.</summary>
/// <param name="Model">The model, weights loaded; the caller owns it and disposes it.</param>
/// <param name="Report">What the load did.</param>
public sealed record LoadedRegNet(RegNetModel Model, WeightFileReport Report);

/// <summary>The weights do not fit the model (a strict <see cref="RegNetWeights.Load"/>, or a classifier mismatch with <see cref="WeightLoadOptions.ReinitializeClassifierOnMismatch"/> off). The message names the first mismatching tensor and both shapes.</summary>
public sealed class WeightMismatchException : ArgumentException
{
    internal WeightMismatchException(string message, WeightLoadReport report) : base(message) => Report = report;

    /// <summary>Everything that did not match.</summary>
    public WeightLoadReport Report { get; }
}

/// <summary>
/// Pretrained and trained weights: one entry point for every ecosystem's files (Keras <c>.h5</c>, PyTorch
/// <c>.pth</c>/<c>.pt</c>/<c>.pyth</c> in timm, torchvision and pycls layouts, safetensors, and this library's own
/// format), plus saving in safetensors (timm layout) and the own format. The format is detected from the content.
/// </summary>
public static class RegNetWeights
{
    /// <summary>Loads <paramref name="path"/> into <paramref name="model"/>, sets the model's padding style, and returns
    /// the report with the preprocessing the weights expect.</summary>
    /// <exception cref="WeightMismatchException">Strict load and the file does not match the model.</exception>
    /// <exception cref="UnsafePickleException">A pickle references something other than tensors, storages and dicts.</exception>
    /// <exception cref="InvalidDataException">Unknown format, truncated or corrupt file.</exception>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    public static WeightFileReport Load(RegNetModel model, string path, WeightLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= WeightLoadOptions.Default;
        var format = WeightFormatDetector.Detect(path);
        using var source = WeightSource.Read(path, format, model, options);
        var (tensors, layout, notes) = (source.Tensors, source.Layout, source.Notes);
        var status = PrepareClassifier(model, tensors, layout, options, notes, out var droppedHeadNames);
        var plan = StateDictLoader.Plan(model, tensors, layout, droppedHeadNames);
        var report = plan.Report with { Layout = source.LayoutName };
        if (options.Strict && !report.IsComplete)
            throw new WeightMismatchException(MismatchMessage(path, model, source.LayoutName, report), report);
        plan.Apply();
        if (status == ClassifierStatus.Reinitialized)
        {
            using var generator = new Generator(unchecked((ulong)options.ClassifierSeed));
            ReinitializeClassifier(model, generator);
        }
        model.Padding = source.Padding;
        return new WeightFileReport(Path.GetFullPath(path), format, source.LayoutName, report, source.Preprocessing, source.Padding, status,
            source.ConvertedBgrToRgb, notes, source.ClassNames, source.Metadata);
    }

    /// <summary>Builds a model from the file's own description and loads it: the own format (architecture, classes and
    /// preprocessing in the metadata), or a Keras file of one of the 24 zoo models (architecture from its layer-name
    /// prefix, class count from its classifier; <c>_notop</c> files give a headless model unless <paramref name="numberOfClasses"/> is set).</summary>
    /// <param name="path">The weight file.</param>
    /// <param name="numberOfClasses">Override the class count (the classifier is then re-initialised if it differs).</param>
    /// <param name="options">Load options.</param>
    /// <exception cref="NotSupportedException">The file does not describe its architecture (plain PyTorch or safetensors
    /// state dicts): construct <see cref="RegNetModel"/> yourself and call <see cref="Load"/>.</exception>
    public static LoadedRegNet LoadModel(string path, int? numberOfClasses = null, WeightLoadOptions? options = null)
    {
        TorchRuntime.Configure(); // an ML.NET zip is read into tensors before the model exists
        var format = WeightFormatDetector.Detect(path);
        RegNetSpec spec;
        int classes;
        switch (format)
        {
            case WeightFormat.RegNetML:
                {
                    var meta = ReadMetadata(path);
                    spec = RegNetSpec.FromJson(meta[RegNetFile.SpecKey]);
                    classes = numberOfClasses ?? int.Parse(meta[RegNetFile.NumClassesKey], System.Globalization.CultureInfo.InvariantCulture);
                    break;
                }
            case WeightFormat.KerasHdf5:
                {
                    var (layers, _) = KerasHdf5.Read(path);
                    string prefix = KerasHdf5.Prefix(layers) ?? throw new NotSupportedException($"{path}: no '*_stem_conv' layer, so the architecture is unknown.");
                    if (!RegNetZoo.TryFind(prefix, out _))
                        throw new NotSupportedException($"{path}: '{prefix}' is not one of the 24 zoo models; build RegNetModel with its spec and call RegNetWeights.Load.");
                    spec = RegNetSpec.FromName(prefix);
                    var head = layers.LastOrDefault(l => l.Weights.Count == 2 && l.Weights[0].Shape.Length == 2);
                    classes = numberOfClasses ?? (head is null ? 0 : (int)head.Weights[0].Shape[1]);
                    break;
                }
            case WeightFormat.RegNetCheckpoint:
                {
                    var header = Training.Checkpoint.ReadHeader(path);
                    spec = WeightSource.CheckpointSpec(header, path);
                    classes = numberOfClasses ?? header.State.NumClasses;
                    break;
                }
            case WeightFormat.MLNetModel:
                {
                    var zip = MLNetModelZip.Read(path);
                    using (zip.Model) (spec, classes) = (zip.Model.Spec, numberOfClasses ?? zip.Model.NumberOfClasses);
                    break;
                }
            default:
                throw new NotSupportedException(
                    $"{path}: a {format} file holds only tensors, not the architecture. Construct RegNetModel(spec, numberOfClasses) and call RegNetWeights.Load.");
        }
        var model = new RegNetModel(spec, classes);
        try
        {
            return new LoadedRegNet(model, Load(model, path, options));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Writes the model's state dict as plain safetensors in timm layout (or <paramref name="layout"/>), readable by
    /// <c>safetensors.torch.load_file</c> and loadable into <c>timm.create_model(name, num_classes=n)</c> (or torchvision with
    /// <see cref="StateDictLayout.TorchVision"/>). Parameters are float32, <c>num_batches_tracked</c> int64.</summary>
    public static void SaveSafetensors(RegNetModel model, string path, IReadOnlyDictionary<string, string>? metadata = null, StateDictLayout? layout = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
        Safetensors.Write(path, StateDict(model, layout ?? StateDictLayout.Timm), meta);
    }

    /// <summary>Writes the own format (see <see cref="RegNetFile"/>): timm-layout safetensors plus architecture, class names,
    /// preprocessing and padding, so <see cref="LoadModel"/> can rebuild the model. Preprocessing defaults to Keras's for a
    /// model with TensorFlow padding, else ImageNet.</summary>
    public static void Save(RegNetModel model, string path, IReadOnlyList<string>? classNames = null,
        PreprocessingSpec? preprocessing = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (classNames is not null && classNames.Count != model.NumberOfClasses)
            throw new ArgumentException($"{classNames.Count} class names for a model with {model.NumberOfClasses} classes.", nameof(classNames));
        preprocessing ??= model.Padding == PaddingStyle.TensorFlowSame ? PreprocessingSpec.Keras : PreprocessingSpec.ImageNet;
        var meta = RegNetFile.Metadata(model.Spec, model.NumberOfClasses, classNames, preprocessing, model.Padding, metadata);
        Safetensors.Write(path, StateDict(model, StateDictLayout.Timm), meta);
    }

    /// <summary>The safetensors metadata of a file (empty for other formats), read from its header alone.</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        var format = WeightFormatDetector.Detect(path);
        if (format is not (WeightFormat.Safetensors or WeightFormat.RegNetML)) return new Dictionary<string, string>();
        return Safetensors.ReadMetadata(path);
    }

    private static IEnumerable<KeyValuePair<string, Tensor>> StateDict(RegNetModel model, StateDictLayout layout)
    {
        var names = layout.TensorNames(model.Spec, model.NumberOfClasses > 0);
        foreach (var (name, tensor) in model.state_dict())
            yield return new(names.TryGetValue(name, out var mapped) ? mapped : name, tensor);
    }

    private static ClassifierStatus PrepareClassifier(RegNetModel model, Dictionary<string, Tensor> source, StateDictLayout layout,
        WeightLoadOptions options, List<string> notes, out HashSet<string> dropped)
    {
        dropped = new HashSet<string>(StringComparer.Ordinal);
        string weightName = layout.Classifier + ".weight", biasName = layout.Classifier + ".bias";
        bool fileHasHead = source.ContainsKey(weightName);
        if (model.NumberOfClasses == 0)
        {
            if (fileHasHead)
            {
                RemoveAndDispose(source, weightName, biasName);
                notes.Add("the file's classifier was ignored: the model is headless");
            }
            return ClassifierStatus.NotInModel;
        }
        if (!options.ReinitializeClassifierOnMismatch) return ClassifierStatus.Loaded;
        if (!fileHasHead)
        {
            dropped.UnionWith(new[] { weightName, biasName });
            notes.Add($"the file has no classifier: the {model.NumberOfClasses}-class classifier was initialised randomly");
            return ClassifierStatus.Reinitialized;
        }
        var fileShape = source[weightName].shape;
        if (fileShape.Length == 2 && fileShape[0] == model.NumberOfClasses && fileShape[1] == model.Spec.FeatureWidth) return ClassifierStatus.Loaded;
        if (fileShape.Length == 2 && fileShape[1] != model.Spec.FeatureWidth) return ClassifierStatus.Loaded; // another architecture: let the check report it
        RemoveAndDispose(source, weightName, biasName);
        dropped.UnionWith(new[] { weightName, biasName });
        notes.Add($"the file's classifier has {fileShape[0]} classes and the model {model.NumberOfClasses}: it was dropped and re-initialised");
        return ClassifierStatus.Reinitialized;
    }

    private static void RemoveAndDispose(Dictionary<string, Tensor> source, params string[] names)
    {
        foreach (var n in names)
            if (source.Remove(n, out var t)) t.Dispose();
    }

    private static string MismatchMessage(string path, RegNetModel model, string layoutName, WeightLoadReport check)
    {
        string first = check.Mismatched.Count > 0
            ? $"First mismatching tensor: {check.Mismatched[0]}. "
            : check.Missing.Count > 0 ? $"First missing tensor: '{check.Missing[0]}'. " : $"First unexpected tensor: '{check.Unexpected[0]}'. ";
        static string List(IEnumerable<string> items, int count) =>
            string.Join(", ", items.Take(5)) + (count > 5 ? $", … ({count} in all)" : "");
        var details = new List<string>();
        if (check.Mismatched.Count > 0) details.Add("shape mismatches: " + List(check.Mismatched.Select(m => m.ToString()), check.Mismatched.Count));
        if (check.Missing.Count > 0) details.Add("missing from the file: " + List(check.Missing, check.Missing.Count));
        if (check.Unexpected.Count > 0) details.Add("not in the model: " + List(check.Unexpected, check.Unexpected.Count));
        return $"{path} ({layoutName} layout) does not match {model.Spec.Name} with {model.NumberOfClasses} classes. {first}" +
               $"{check.Mismatched.Count} shape mismatches, {check.Missing.Count} missing, {check.Unexpected.Count} unexpected ({string.Join("; ", details)}). " +
               "The file was probably saved for another architecture: pass the matching RegNetSpec, " +
               "or load with Strict = false to skip what does not match (WeightMismatchException.Report lists everything).";
    }

    // N(0, 0.01) weights drawn from the given generator (the random state is passed in, never process-wide), zero bias.
    private static void ReinitializeClassifier(RegNetModel model, Generator generator)
    {
        if (model.Classifier is not { } fc) return;
        using var noGrad = no_grad();
        fc.weight!.normal_(0.0, 0.01, generator);
        if (fc.bias is not null) nn.init.zeros_(fc.bias);
    }
}
