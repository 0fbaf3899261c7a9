using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.RegNet.Modules;
using Microsoft.ML.RegNet.Weights.Formats;
using Microsoft.ML.RegNet.Weights.Layouts;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Weights;

/// <summary>Everything a weight file says, read by the reader of its format: the tensors (in <see cref="Layout"/>'s
/// names) and what travels with them. The tensors belong to the source: <see cref="Dispose"/> frees them.</summary>
internal sealed record WeightSource(
    WeightFormat Format, Dictionary<string, Tensor> Tensors, StateDictLayout Layout, string LayoutName, PreprocessingSpec Preprocessing,
    PaddingStyle Padding, bool ConvertedBgrToRgb, List<string> Notes, IReadOnlyList<string> ClassNames, IReadOnlyDictionary<string, string> Metadata)
    : IDisposable
{
    private static readonly IReadOnlyDictionary<string, string> NoMetadata = new Dictionary<string, string>();

    /// <summary>Reads <paramref name="path"/> in <paramref name="format"/>; <paramref name="model"/> is only consulted for
    /// pairing Keras layers and for notes, never changed.</summary>
    public static WeightSource Read(string path, WeightFormat format, RegNetModel model, WeightLoadOptions options) => format switch
    {
        WeightFormat.KerasHdf5 => Keras(path, model),
        WeightFormat.PyTorch => Torch(path, options),
        WeightFormat.Safetensors => PlainSafetensors(path, options),
        WeightFormat.RegNetML => Own(path, model),
        WeightFormat.MLNetModel => MLNet(path),
        WeightFormat.RegNetCheckpoint => TrainerCheckpoint(path),
        _ => throw new InvalidDataException($"{path}: unsupported format {format}."),
    };

    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }

    private static WeightSource Keras(string path, RegNetModel model)
    {
        var (layers, fullModel) = KerasHdf5.Read(path);
        var (tensors, hasTop, pairing) = KerasHdf5.ToCanonical(layers, model.Spec);
        var notes = new List<string>
        {
            $"Keras {(fullModel ? "full-model" : "weights-only")} file{(hasTop ? "" : " without top (_notop)")}; layers paired {pairing}; " +
            "padding set to TensorFlow 'same'; expects RGB scaled to [0, 1] without mean/std",
        };
        return new WeightSource(WeightFormat.KerasHdf5, tensors, StateDictLayout.Timm, $"keras ({pairing})", PreprocessingSpec.Keras,
            PaddingStyle.TensorFlowSame, false, notes, [], NoMetadata);
    }

    private static WeightSource Torch(string path, WeightLoadOptions options)
    {
        var (tensors, wrapper) = TorchPickle.ReadStateDict(path);
        var notes = new List<string>();
        if (wrapper is not null) notes.Add($"state dict read from the checkpoint's '{wrapper}' entry");
        return StateDict(path, WeightFormat.PyTorch, tensors, NoMetadata, notes, options);
    }

    private static WeightSource PlainSafetensors(string path, WeightLoadOptions options)
    {
        var (tensors, metadata) = Safetensors.Read(path);
        return StateDict(path, WeightFormat.Safetensors, tensors, metadata, [], options);
    }

    /// <summary>A PyTorch-style state dict: its layout from the options or marker keys, pycls's BGR stem handled.</summary>
    private static WeightSource StateDict(string path, WeightFormat format, Dictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string> metadata, List<string> notes, WeightLoadOptions options)
    {
        var source = new WeightSource(format, tensors, StateDictLayout.Timm, "", PreprocessingSpec.ImageNet, PaddingStyle.Symmetric, false, notes, [], metadata);
        try
        {
            var layout = options.Layout ?? StateDictLayout.Detect(tensors.Keys) ?? throw new InvalidDataException(
                $"{path}: the tensors use no known RegNet layout (timm, torchvision or pycls): none of " +
                $"{string.Join(", ", StateDictLayout.Known.Select(l => $"'{l.MarkerKey}'"))} is present. First keys: {string.Join(", ", tensors.Keys.Take(5))}. " +
                "Is this a RegNet checkpoint?");
            source = source with { Layout = layout, LayoutName = layout.Name };
            return layout == StateDictLayout.Pycls ? source.WithPyclsInput(options.ConvertBgrToRgb) : source;
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>Native pycls weights expect BGR input: flip the stem's input channels, or say BGR in the preprocessing.</summary>
    private WeightSource WithPyclsInput(bool convertToRgb)
    {
        if (!convertToRgb)
        {
            Notes.Add("pycls weights kept as published: feed BGR input");
            return this with { Preprocessing = Preprocessing with { Normalization = ImageNormalization.ImageNetBgr } };
        }
        string stem = Layout.StemConv + ".weight";
        if (!Tensors.TryGetValue(stem, out var w) || w.dim() != 4 || w.shape[1] != 3) return this;
        Tensors[stem] = w.flip(1);
        w.Dispose();
        Notes.Add("BGR→RGB: pycls weights expect BGR input; the stem convolution's input channels were flipped so the model takes RGB");
        return this with { ConvertedBgrToRgb = true };
    }

    private static WeightSource Own(string path, RegNetModel model)
    {
        var (tensors, meta) = Safetensors.Read(path);
        var source = new WeightSource(WeightFormat.RegNetML, tensors, StateDictLayout.Timm, "regnetml (timm)", PreprocessingSpec.ImageNet,
            PaddingStyle.Symmetric, false, [], [], meta);
        try
        {
            if (meta.TryGetValue(RegNetFile.PreprocessingKey, out var p)) source = source with { Preprocessing = RegNetFile.PreprocessingFromJson(p) };
            source = source with { Padding = RegNetFile.PaddingFromString(meta.GetValueOrDefault(RegNetFile.PaddingKey)) };
            if (meta.TryGetValue(RegNetFile.ClassNamesKey, out var names))
                source = source with { ClassNames = JsonSerializer.Deserialize<string[]>(names) ?? [] };
            if (meta.TryGetValue(RegNetFile.SpecKey, out var specJson) && RegNetSpec.FromJson(specJson) is var saved && !saved.Equals(model.Spec))
                source.Notes.Add($"the file was saved for {saved}, the model is {model.Spec}");
            return source;
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    private static WeightSource MLNet(string path)
    {
        var zip = MLNetModelZip.Read(path);
        Dictionary<string, Tensor> tensors;
        PaddingStyle padding;
        using (zip.Model)
        {
            tensors = zip.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            padding = zip.Model.Padding;
        }
        var notes = new List<string>(zip.Notes)
        {
            "the preprocessing is part of the zip's ONNX graph and is not read back: the report gives ImageNet's; train with the " +
            "normalisation the model was trained with",
        };
        if (IsIdentityBatchNorm(tensors))
            notes.Add("the export had BatchNorm folded into the convolutions: each BatchNorm starts as an identity (same outputs in eval mode, new statistics when trained)");
        // RegNetOnnxImporter rebuilds the network itself, whose names are the timm layout's.
        return new WeightSource(WeightFormat.MLNetModel, tensors, StateDictLayout.Timm, "ml.net model (onnx, timm)", PreprocessingSpec.ImageNet,
            padding, false, notes, zip.ClassNames, NoMetadata);
    }

    // A checkpoint of this library's trainer: verified completely (SHA-256) before its model's weights are read. The
    // preprocessing and class names are those of the run's configuration stored in it.
    private static WeightSource TrainerCheckpoint(string path)
    {
        var header = Training.Checkpoint.ReadHeader(path);
        Dictionary<string, Tensor> tensors;
        PaddingStyle padding;
        using (var generator = new Generator(0)) // the model's initial weights are overwritten; the process-wide generator is left alone
        using (var model = new RegNetModel(CheckpointSpec(header, path), header.State.NumClasses, generator: generator))
        {
            Training.Checkpoint.Load(path, model, optimizer: null);
            tensors = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            padding = model.Padding;
        }
        var notes = new List<string>
        {
            $"RegNetML trainer checkpoint (epoch {header.State.Epoch}, step {header.State.GlobalStep}): its model weights; the optimizer state is not used",
        };
        var config = header.Config;
        var classNames = config?["classes"] is JsonArray names ? names.Select(n => (string?)n ?? "").ToArray() : [];
        return new WeightSource(WeightFormat.RegNetCheckpoint, tensors, StateDictLayout.Timm, "regnetml checkpoint (timm)",
            CheckpointPreprocessing(config), padding, false, notes, classNames, NoMetadata);
    }

    /// <summary>The architecture a trainer checkpoint was written for (its training state holds the spec's JSON; older
    /// checkpoints hold it in their configuration only).</summary>
    internal static RegNetSpec CheckpointSpec(Training.CheckpointHeader header, string path)
    {
        string stored = header.State.Architecture;
        if (stored.TrimStart().StartsWith('{')) return RegNetSpec.FromJson(stored);
        if (header.Config?["spec"] is JsonObject spec) return RegNetSpec.FromJson(spec);
        throw new InvalidDataException($"{path}: the checkpoint names its architecture as '{stored}' without its parameters; build RegNetModel with that spec and call RegNetWeights.Load.");
    }

    // The normalisation, image size and crop the checkpoint's run trained with (its config.json), else ImageNet's.
    private static PreprocessingSpec CheckpointPreprocessing(JsonObject? config)
    {
        if (config?["normalization"] is not JsonObject n) return PreprocessingSpec.ImageNet;
        static float[] Floats(JsonNode? values) => values!.AsArray().Select(v => (float)v!).ToArray();
        var normalization = new ImageNormalization((float)n["Scale"]!, Floats(n["Mean"]), Floats(n["Std"]), Enum.Parse<ChannelOrder>((string)n["Order"]!));
        var preprocessing = new PreprocessingSpec(normalization);
        if (config["ImageSize"] is JsonValue size) preprocessing = preprocessing with { ImageSize = (int)size };
        if (config["CropFraction"] is JsonValue crop) preprocessing = preprocessing with { CropFraction = (double)crop };
        return preprocessing;
    }

    // RegNetOnnxImporter gives a folded export's BatchNorms γ = 1, mean 0, variance 1 − ε (a fresh BatchNorm has
    // variance 1): the stem's tell.
    private static bool IsIdentityBatchNorm(Dictionary<string, Tensor> tensors)
    {
        using var scope = NewDisposeScope();
        return tensors.TryGetValue("stem.bn.running_mean", out var mean) && tensors.TryGetValue("stem.bn.running_var", out var variance)
            && tensors.TryGetValue("stem.bn.weight", out var gamma) && mean.eq(0).all().item<bool>() && gamma.eq(1).all().item<bool>()
            && variance.eq((float)(1 - ConvNorm.BatchNormEps)).all().item<bool>();
    }
}
