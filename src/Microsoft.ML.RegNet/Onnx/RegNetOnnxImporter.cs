using System.Runtime.InteropServices;
using System.Text.Json;
using Google.Protobuf;
using Microsoft.ML.RegNet.Onnx.Proto;
using TorchSharp;
using static TorchSharp.torch;
using Microsoft.ML.RegNet.Onnx;

namespace Microsoft.ML.RegNet;

/// <summary>
/// Reads weights back from an ONNX file written by <see cref="RegNetOnnxExporter"/>, so an exported model can be
/// fine-tuned again. Files exported with unfolded BatchNorm give the original state dict bit for bit (BN running
/// statistics and counters included). Files exported with <see cref="OnnxExportOptions.FoldBatchNorm"/> give an
/// <em>equivalent</em> model: each convolution holds the folded weights and its BN is an identity (γ = 1, β = folded
/// bias, running mean 0, running variance 1 − ε), which computes the same function in eval mode but is not the
/// original parameterisation (training with batch statistics will behave differently).
/// </summary>
public static class RegNetOnnxImporter
{
    /// <summary>Rebuilds the model (architecture, classes, padding style) and its weights from an exported file.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">The file is damaged, not ONNX, or not written by RegNetOnnxExporter.</exception>
    public static RegNetModel Load(string path)
    {
        var (proto, meta) = Read(path);
        return Build(proto, meta, path);
    }

    /// <summary>Rebuilds the model from ONNX bytes (e.g. a stream copied into memory).</summary>
    public static RegNetModel Load(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        var (proto, meta) = Parse(buffer.ToArray(), "the stream");
        return Build(proto, meta, "the stream");
    }

    /// <summary>Copies the weights of an exported file into an existing model of the same architecture and class count.</summary>
    /// <exception cref="ArgumentException">The file describes a different architecture or class count.</exception>
    public static void LoadWeights(RegNetModel model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        var (proto, meta) = Read(path);
        var spec = meta.ToSpec();
        if (!spec.Equals(model.Spec) || meta.NumberOfClasses != model.NumberOfClasses)
            throw new ArgumentException($"'{path}' holds {spec} with {meta.NumberOfClasses} classes, but the model is {model.Spec} with {model.NumberOfClasses} classes. " +
                "Use RegNetOnnxImporter.Load(path) to rebuild the matching model.", nameof(model));
        CopyWeights(model, proto, meta, path);
    }

    /// <summary>True when the file was exported with folded BatchNorm (recovery then gives identity BNs).</summary>
    public static bool IsBatchNormFolded(string path) => Read(path).Meta.FoldedBatchNorm;

    private static RegNetModel Build(ModelProto proto, RegNetOnnxMetadata meta, string source)
    {
        RegNetModel model;
        try
        {
            model = new RegNetModel(meta.ToSpec(), meta.NumberOfClasses) { Padding = meta.PaddingStyle };
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{source}: the RegNet description stored in the ONNX metadata is invalid ({e.Message}). The file is damaged; export it again.", e);
        }
        try
        {
            CopyWeights(model, proto, meta, source);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    private static (ModelProto Proto, RegNetOnnxMetadata Meta) Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"No ONNX file at '{Path.GetFullPath(path)}'.", path);
        return Parse(File.ReadAllBytes(path), $"'{path}'");
    }

    private static (ModelProto Proto, RegNetOnnxMetadata Meta) Parse(byte[] bytes, string source)
    {
        const string Advice = "Export the model again with RegNetOnnxExporter (or restore the file from a backup).";
        if (bytes.Length == 0)
            throw new InvalidDataException($"{source} is empty, not an ONNX model. {Advice}");
        ModelProto proto;
        try
        {
            proto = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{source} is not a readable ONNX model: the protobuf data is truncated or damaged ({e.Message}). {Advice}", e);
        }
        var entry = proto.MetadataProps.FirstOrDefault(p => p.Key == RegNetOnnxMetadata.Key);
        if (proto.Graph is null || entry is null)
            throw new InvalidDataException(
                $"{source} is not an ONNX model written by RegNetOnnxExporter (no graph or no '{RegNetOnnxMetadata.Key}' metadata; producer '{proto.ProducerName}'). " +
                "Only files exported by this library carry the architecture needed to rebuild a RegNetModel; a truncated export also ends up here. " + Advice);
        RegNetOnnxMetadata meta;
        try
        {
            meta = RegNetOnnxMetadata.FromJson(entry.Value);
        }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        {
            throw Damaged(e);
        }
        // Before reading the architecture: a newer format may describe it differently.
        if (meta.Format > RegNetOnnxMetadata.CurrentFormat)
            throw new InvalidDataException($"{source} was written by a newer Microsoft.ML.RegNet (format {meta.Format}; this version reads up to {RegNetOnnxMetadata.CurrentFormat}). Update the package.");
        try
        {
            _ = meta.ToSpec();
            _ = meta.PaddingStyle;
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException)
        {
            throw Damaged(e);
        }
        return (proto, meta);

        InvalidDataException Damaged(Exception e) =>
            new($"{source}: the '{RegNetOnnxMetadata.Key}' metadata is damaged ({e.Message}). {Advice}", e);
    }

    private static void CopyWeights(RegNetModel model, ModelProto proto, RegNetOnnxMetadata meta, string source)
    {
        var initializers = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (var t in proto.Graph.Initializer) initializers[t.Name] = t;

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, target) in ExportedWeights.CanonicalState(model))
        {
            if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal))
            {
                target.fill_(meta.NumBatchesTracked.TryGetValue(name, out long n) ? n : 0);
                continue;
            }
            float[] data;
            if (meta.FoldedBatchNorm && name.Contains(".bn.", StringComparison.Ordinal))
            {
                string prefix = name[..name.IndexOf(".bn.", StringComparison.Ordinal)];
                int channels = (int)target.shape[0];
                string field = name[(prefix.Length + 4)..];
                data = field switch
                {
                    "weight" => Enumerable.Repeat(1f, channels).ToArray(),
                    "bias" => ReadFloats(initializers, $"{prefix}.conv.bias", target.shape, source),
                    "running_mean" => new float[channels],
                    "running_var" => Enumerable.Repeat((float)(1 - Modules.ConvNorm.BatchNormEps), channels).ToArray(),
                    _ => throw new InvalidDataException($"{source}: unexpected BatchNorm tensor '{name}'."),
                };
            }
            else
            {
                data = ReadFloats(initializers, name, target.shape, source);
            }
            target.copy_(tensor(data, target.shape, dtype: target.dtype, device: target.device));
        }
    }

    private static float[] ReadFloats(Dictionary<string, TensorProto> initializers, string name, long[] shape, string source)
    {
        const string Advice = "The file is damaged or was not exported from this architecture; export the model again.";
        if (!initializers.TryGetValue(name, out var t))
            throw new InvalidDataException($"{source} lacks the weight '{name}'. {Advice}");
        if (t.DataType != (int)TensorProto.Types.DataType.Float)
            throw new InvalidDataException($"{source}: weight '{name}' is ONNX data type {t.DataType}, not FLOAT (1). {Advice}");
        if (!t.Dims.SequenceEqual(shape))
            throw new InvalidDataException($"{source}: weight '{name}' has shape [{string.Join(", ", t.Dims)}], expected [{string.Join(", ", shape)}]. {Advice}");
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (t.RawData.Length > 0)
        {
            if (t.RawData.Length != count * sizeof(float))
                throw new InvalidDataException($"{source}: weight '{name}' holds {t.RawData.Length} bytes, expected {count * sizeof(float)}. {Advice}");
            return MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray();
        }
        if (t.FloatData.Count != count)
            throw new InvalidDataException($"{source}: weight '{name}' holds {t.FloatData.Count} values, expected {count}. {Advice}");
        return t.FloatData.ToArray();
    }
}
