using Google.Protobuf;
using Microsoft.ML.RegNet.Onnx.Proto;
using static Microsoft.ML.RegNet.Onnx.OnnxProtos;
using Microsoft.ML.RegNet.Onnx;

namespace Microsoft.ML.RegNet;

/// <summary>
/// Writes a <see cref="RegNetModel"/> as an ONNX model (Conv, BatchNormalization, Relu, GlobalAveragePool, Sigmoid, Mul,
/// Add, Flatten, Gemm, Softmax, ArgMax): TorchSharp has no ONNX exporter, so each module writes its own nodes
/// (<see cref="IOnnxExportable"/>) and the result is serialised with Google.Protobuf. This class adds the input, the optional
/// crop and normalisation, the outputs and the metadata. Initializers carry the state-dict names (<c>stem.conv.weight</c>, …),
/// which is what lets <see cref="RegNetOnnxImporter"/> read the weights back.
/// </summary>
public static class RegNetOnnxExporter
{
    /// <summary>Producer name written into every file.</summary>
    public const string ProducerName = "Microsoft.ML.RegNet";

    /// <summary>Exports to a file, atomically: the ONNX bytes go to a temporary file next to <paramref name="path"/>,
    /// which is renamed over it only when complete; on failure no file (partial or temporary) is left behind.</summary>
    /// <param name="model">The network to export (eval-mode computation; BatchNorm running statistics are used).</param>
    /// <param name="path">The <c>.onnx</c> file to write; its folder must exist.</param>
    /// <param name="options">Names, opset, fixed sizes, in-graph preprocessing and BN folding; null: the defaults of <see cref="OnnxExportOptions"/>.</param>
    /// <exception cref="ArgumentException">Invalid options or path.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist.</exception>
    /// <exception cref="InvalidOperationException">The model has no usable weights (disposed or non-finite).</exception>
    public static void Export(RegNetModel model, string path, OnnxExportOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var proto = Build(model, options);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        // A mistyped folder is refused rather than created (AtomicFile would create it).
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"Cannot export to '{full}': the folder '{dir}' does not exist. Create it first.");
        AtomicFile.Write(full, proto.WriteTo);
    }

    /// <summary>Exports to a stream (left open). Nothing is written unless the whole graph was built.</summary>
    /// <param name="model">The network to export (eval-mode computation; BatchNorm running statistics are used).</param>
    /// <param name="stream">A writable stream; the model is written at its current position.</param>
    /// <param name="options">Names, opset, fixed sizes, in-graph preprocessing and BN folding; null: the defaults of <see cref="OnnxExportOptions"/>.</param>
    /// <exception cref="ArgumentException">The stream is not writable, or the options are invalid.</exception>
    public static void Export(RegNetModel model, Stream stream, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite) throw new ArgumentException("The stream must be writable.", nameof(stream));
        var proto = Build(model, options);
        proto.WriteTo(stream);
    }

    /// <summary>Exports to a byte array (e.g. for an in-memory ONNX Runtime session).</summary>
    /// <param name="model">The network to export (eval-mode computation; BatchNorm running statistics are used).</param>
    /// <param name="options">Names, opset, fixed sizes, in-graph preprocessing and BN folding; null: the defaults of <see cref="OnnxExportOptions"/>.</param>
    /// <returns>The serialised ONNX model.</returns>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public static byte[] ExportToBytes(RegNetModel model, OnnxExportOptions? options = null) => Build(model, options).ToByteArray();

    // weights: a copy read earlier (ExportedWeights.Read); null reads the model's now. With a copy, the graph is built
    // from the module tree's settings alone and touches no tensor, so it works after the model was disposed.
    internal static ModelProto Build(RegNetModel model, OnnxExportOptions? options, ExportedWeights? weights = null)
    {
        options = Validated(model, options);
        weights ??= ExportedWeights.Read(model);
        var g = new OnnxGraphWriter(weights, options.FoldBatchNorm);
        g.Graph.Name = options.GraphName;
        var input = AddInput(g, options);
        var features = g.Module(model, "", input);
        AddOutputs(g, options, features.Name, model.NumberOfClasses > 0 ? model.NumberOfClasses : model.Spec.FeatureWidth);

        var proto = new ModelProto
        {
            IrVersion = IrVersionFor(options.OpsetVersion),
            ProducerName = ProducerName,
            ProducerVersion = typeof(RegNetOnnxExporter).Assembly.GetName().Version?.ToString() ?? "",
            Graph = g.Graph,
            DocString = options.DocString ?? $"{model.Spec} ({(model.NumberOfClasses > 0 ? $"{model.NumberOfClasses} classes" : "headless")})",
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.OpsetVersion });
        if (options.ClassNames is not null && options.ProbabilitiesOutputName is not null)
            proto.OpsetImport.Add(new OperatorSetIdProto { Domain = MLDomain, Version = 2 });
        var meta = RegNetOnnxMetadata.From(model, options.FoldBatchNorm, weights.Counters);
        proto.MetadataProps.Add(new StringStringEntryProto { Key = RegNetOnnxMetadata.Key, Value = meta.ToJson() });
        if (options.Normalization is { } n)
            proto.MetadataProps.Add(new StringStringEntryProto { Key = "regnet.preprocessing", Value = FormattableString.Invariant(
                $"raw 0-255 RGB planes; x = (pixel*{n.Scale} - mean[{string.Join(",", n.Mean)}]) / std[{string.Join(",", n.Std)}]; order {n.Order}") });
        return proto;
    }

    private static OnnxExportOptions Validated(RegNetModel model, OnnxExportOptions? options)
    {
        ArgumentNullException.ThrowIfNull(model);
        options = (options ?? new OnnxExportOptions()).Clone();
        options.Validate();
        if (model.NumberOfClasses == 0 && (options.ProbabilitiesOutputName is not null || options.PredictedIndexOutputName is not null))
            throw new ArgumentException("The model is headless (numberOfClasses: 0): it outputs pooled features, so ProbabilitiesOutputName and PredictedIndexOutputName must be null.", nameof(options));
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw tensor data is little-endian; big-endian hosts are not supported.");
        return options;
    }

    // The graph input, the optional centre crop and the optional normalisation; the result has the network's input size.
    private static OnnxValue AddInput(OnnxGraphWriter g, OnnxExportOptions options)
    {
        int? inputSize = options.CropFromSize ?? options.ImageSize;
        g.Graph.Input.Add(ValueInfo(options.InputName, TensorProto.Types.DataType.Float,
            Dim(options.BatchSize, "N"), Dim(3, null), Dim(inputSize, "height"), Dim(inputSize, "width")));
        string x = options.InputName;
        if (options.CropFromSize is { } from && from != options.ImageSize)
        {
            int size = options.ImageSize!.Value;
            long offset = Data.Transforms.EvaluationCrop.WindowOffsetFor(from, size);
            x = g.Node("Slice", new[] { x, g.Int64s("crop.starts", offset, offset), g.Int64s("crop.ends", offset + size, offset + size), g.Int64s("crop.axes", 2, 3) }, "crop");
        }
        if (options.Normalization is { } norm)
            x = Normalize(g, x, norm);
        return new OnnxValue(x, options.ImageSize);
    }

    // Logits (or pooled features), then the optional squeeze, probabilities, slot names and arg-max.
    private static void AddOutputs(OnnxGraphWriter g, OnnxExportOptions options, string x, int width)
    {
        bool squeeze = options.SqueezeBatchDimension;
        if (squeeze)
            x = g.Node("Reshape", new[] { x, g.Int64s("head.squeeze_shape", width) }, "head.squeeze");
        var logitDims = squeeze ? new[] { Dim(width, null) } : new[] { Dim(options.BatchSize, "N"), Dim(width, null) };
        if (options.IncludeLogits)
        {
            x = g.Node("Identity", new[] { x }, "output.logits", Array.Empty<AttributeProto>(), options.OutputName);
            g.Graph.Output.Add(ValueInfo(options.OutputName, TensorProto.Types.DataType.Float, logitDims));
        }
        if (options.ProbabilitiesOutputName is { } probs)
        {
            g.Node("Softmax", new[] { x }, "output.softmax", new[] { Int("axis", -1) }, outputName: probs);
            g.Graph.Output.Add(ValueInfo(probs, TensorProto.Types.DataType.Float, logitDims));
            if (options.ClassNames is { } classes)
                AddSlotNames(g, probs, classes);
        }
        if (options.PredictedIndexOutputName is { } argmax)
        {
            // Squeezed: a one-element vector rather than a rank-0 tensor, which ML.NET's OnnxTransformer cannot read.
            g.Node("ArgMax", new[] { x }, "output.argmax", new[] { Int("axis", -1), Int("keepdims", squeeze ? 1 : 0) }, outputName: argmax);
            g.Graph.Output.Add(ValueInfo(argmax, TensorProto.Types.DataType.Int64, squeeze ? new[] { Dim(1, null) } : new[] { Dim(options.BatchSize, "N") }));
        }
    }

    private const string MLDomain = "ai.onnx.ml";

    // ML.NET's OnnxTransformer gives an output column slot names from a node named "mlnet.<output>.SlotNames" with a
    // keys_strings attribute (the convention of ML.NET's own ONNX export). The node is a LabelEncoder on a constant so
    // that the graph stays valid; nothing consumes its output.
    private static void AddSlotNames(OnnxGraphWriter g, string output, IReadOnlyList<string> names)
    {
        var constant = new TensorProto { Name = "slot_names.key", DataType = (int)TensorProto.Types.DataType.String };
        constant.Dims.Add(1);
        constant.StringData.Add(ByteString.CopyFromUtf8(names[0]));
        string key = g.Node("Constant", Array.Empty<string>(), "slot_names.key",
            new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = constant });
        var keys = new AttributeProto { Name = "keys_strings", Type = AttributeProto.Types.AttributeType.Strings };
        keys.Strings.Add(names.Select(ByteString.CopyFromUtf8));
        string node = g.Node("LabelEncoder", new[] { key }, $"mlnet.{output}.SlotNames",
            new[] { keys, Ints("values_int64s", Enumerable.Range(0, names.Count).Select(i => (long)i).ToArray()), Int("default_int64", -1) },
            outputName: "slot_names.index");
        g.Graph.Node[^1].Domain = MLDomain;
        _ = node;
    }

    // x·Scale − Mean[c], ÷ Std[c] in the input's R, G, B order, then the channel reorder the network expects.
    private static string Normalize(OnnxGraphWriter g, string x, ImageNormalization n)
    {
        x = g.Node("Mul", new[] { x, g.Floats("preprocess.scale.value", new[] { n.Scale }, Array.Empty<long>()) }, "preprocess.scale");
        x = g.Node("Sub", new[] { x, g.Floats("preprocess.mean.value", n.Mean, new long[] { 1, 3, 1, 1 }) }, "preprocess.mean");
        x = g.Node("Div", new[] { x, g.Floats("preprocess.std.value", n.Std, new long[] { 1, 3, 1, 1 }) }, "preprocess.std");
        if (n.Order == ChannelOrder.Bgr)
            x = g.Node("Gather", new[] { x, g.Int64s("preprocess.bgr.indices", 2, 1, 0) }, "preprocess.bgr", Int("axis", 1));
        return x;
    }

    private static long IrVersionFor(int opset) => opset switch
    {
        <= 14 => 7,
        <= 18 => 8,
        <= 20 => 9,
        _ => 10,
    };
}
