using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.RegNet.Data;
using Microsoft.ML.RegNet.Models;
using Microsoft.ML.RegNet.Modules;
using Microsoft.ML.RegNet.Onnx.Proto;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Onnx;

/// <summary>
/// Writes a <see cref="RegNetModel"/> as an ONNX model (Conv, BatchNormalization, Relu, GlobalAveragePool, Sigmoid, Mul,
/// Add, Flatten, Gemm, Softmax, ArgMax): TorchSharp has no ONNX exporter, so the graph is built here from the model's
/// structure and serialised with Google.Protobuf. Initializers carry the state-dict names (<c>stem.conv.weight</c>, …),
/// which is what lets <see cref="RegNetOnnxImporter"/> read the weights back.
/// </summary>
public static class RegNetOnnxExporter
{
    /// <summary>Producer name written into every file.</summary>
    public const string ProducerName = "Microsoft.ML.RegNet";

    /// <summary>Exports to a file, atomically: the ONNX bytes go to a temporary file next to <paramref name="path"/>,
    /// which is renamed over it only when complete; on failure no file (partial or temporary) is left behind.</summary>
    /// <exception cref="ArgumentException">Invalid options or path.</exception>
    /// <exception cref="InvalidOperationException">The model has no usable weights (disposed or non-finite).</exception>
    public static void Export(RegNetModel model, string path, OnnxExportOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var proto = Build(model, options);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"Cannot export to '{full}': the folder '{dir}' does not exist. Create it first.");
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                proto.WriteTo(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Exports to a stream (left open). Nothing is written unless the whole graph was built.</summary>
    public static void Export(RegNetModel model, Stream stream, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite) throw new ArgumentException("The stream must be writable.", nameof(stream));
        var proto = Build(model, options);
        proto.WriteTo(stream);
    }

    /// <summary>Exports to a byte array.</summary>
    public static byte[] ExportToBytes(RegNetModel model, OnnxExportOptions? options = null) => Build(model, options).ToByteArray();

    internal static ModelProto Build(RegNetModel model, OnnxExportOptions? options)
    {
        ArgumentNullException.ThrowIfNull(model);
        options = (options ?? new OnnxExportOptions()).Clone();
        options.Validate();
        if (model.NumClasses == 0 && (options.ProbabilitiesOutputName is not null || options.PredictedIndexOutputName is not null))
            throw new ArgumentException("The model is headless (numClasses: 0): it outputs pooled features, so ProbabilitiesOutputName and PredictedIndexOutputName must be null.", nameof(options));
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw tensor data is little-endian; big-endian hosts are not supported.");

        var weights = ReadWeights(model);
        var g = new GraphWriter(weights, options.FoldBatchNorm);
        var graph = g.Graph;
        graph.Name = options.GraphName;

        // Input.
        int? inputSize = options.CropFromSize ?? options.ImageSize;
        graph.Input.Add(ValueInfo(options.InputName, TensorProto.Types.DataType.Float,
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

        // Backbone.
        int? spatial = options.ImageSize;
        x = g.ConvNorm("stem", model.Stem, x, ref spatial, model.Padding);
        foreach (var block in model.Stages.SelectMany(s => s.Blocks))
        {
            string p = $"s{block.Spec.Stage}.b{block.Spec.Index}";
            int? inSpatial = spatial;
            string branch = g.ConvNorm($"{p}.conv1", block.Conv1, x, ref spatial, model.Padding);
            branch = g.ConvNorm($"{p}.conv2", block.Conv2, branch, ref spatial, model.Padding);
            if (block.SqueezeExcitation is not null)
            {
                string s = g.Node("GlobalAveragePool", new[] { branch }, $"{p}.se.pool");
                s = g.Node("Conv", new[] { s, g.Weight($"{p}.se.fc1.weight"), g.Weight($"{p}.se.fc1.bias") }, $"{p}.se.fc1", Ints("kernel_shape", 1, 1));
                s = g.Node("Relu", new[] { s }, $"{p}.se.relu");
                s = g.Node("Conv", new[] { s, g.Weight($"{p}.se.fc2.weight"), g.Weight($"{p}.se.fc2.bias") }, $"{p}.se.fc2", Ints("kernel_shape", 1, 1));
                s = g.Node("Sigmoid", new[] { s }, $"{p}.se.gate");
                branch = g.Node("Mul", new[] { branch, s }, $"{p}.se.scale");
            }
            branch = g.ConvNorm($"{p}.conv3", block.Conv3, branch, ref spatial, model.Padding);
            string shortcut = x;
            if (block.Downsample is not null)
            {
                int? dsSpatial = inSpatial;
                shortcut = g.ConvNorm($"{p}.downsample", block.Downsample, x, ref dsSpatial, model.Padding);
            }
            x = g.Node("Add", new[] { branch, shortcut }, $"{p}.add");
            x = g.Node("Relu", new[] { x }, $"{p}.act");
        }

        // Head.
        x = g.Node("GlobalAveragePool", new[] { x }, "head.pool");
        x = g.Node("Flatten", new[] { x }, "head.flatten", Int("axis", 1));
        int width = model.NumClasses > 0 ? model.NumClasses : model.Spec.FeatureWidth;
        if (model.NumClasses > 0)
            x = g.Node("Gemm", new[] { x, g.Weight("head.fc.weight"), g.Weight("head.fc.bias") }, "head.fc", Int("transB", 1));
        bool squeeze = options.SqueezeBatchDimension;
        if (squeeze)
            x = g.Node("Reshape", new[] { x, g.Int64s("head.squeeze_shape", width) }, "head.squeeze");

        var logitDims = squeeze ? new[] { Dim(width, null) } : new[] { Dim(options.BatchSize, "N"), Dim(width, null) };
        if (options.IncludeLogits)
        {
            x = g.Node("Identity", new[] { x }, "output.logits", Array.Empty<AttributeProto>(), options.OutputName);
            graph.Output.Add(ValueInfo(options.OutputName, TensorProto.Types.DataType.Float, logitDims));
        }
        if (options.ProbabilitiesOutputName is { } probs)
        {
            g.Node("Softmax", new[] { x }, "output.softmax", new[] { Int("axis", -1) }, outputName: probs);
            graph.Output.Add(ValueInfo(probs, TensorProto.Types.DataType.Float, logitDims));
        }
        if (options.ProbabilitiesOutputName is { } named && options.ClassNames is { } classes)
            AddSlotNames(g, named, classes);
        if (options.PredictedIndexOutputName is { } argmax)
        {
            // Squeezed: a one-element vector rather than a rank-0 tensor, which ML.NET's OnnxTransformer cannot read.
            g.Node("ArgMax", new[] { x }, "output.argmax", new[] { Int("axis", -1), Int("keepdims", squeeze ? 1 : 0) }, outputName: argmax);
            graph.Output.Add(ValueInfo(argmax, TensorProto.Types.DataType.Int64, squeeze ? new[] { Dim(1, null) } : new[] { Dim(options.BatchSize, "N") }));
        }

        var proto = new ModelProto
        {
            IrVersion = IrVersionFor(options.OpsetVersion),
            ProducerName = ProducerName,
            ProducerVersion = typeof(RegNetOnnxExporter).Assembly.GetName().Version?.ToString() ?? "",
            Graph = graph,
            DocString = options.DocString ?? $"{model.Spec} ({(model.NumClasses > 0 ? $"{model.NumClasses} classes" : "headless")})",
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.OpsetVersion });
        if (options.ClassNames is not null && options.ProbabilitiesOutputName is not null)
            proto.OpsetImport.Add(new OperatorSetIdProto { Domain = MLDomain, Version = 2 });
        var meta = RegNetOnnxMetadata.From(model, options.FoldBatchNorm, weights.Counters);
        proto.MetadataProps.Add(new StringStringEntryProto { Key = RegNetOnnxMetadata.Key, Value = meta.ToJson() });
        if (options.Normalization is { } n2)
            proto.MetadataProps.Add(new StringStringEntryProto { Key = "regnet.preprocessing", Value = FormattableString.Invariant(
                $"raw 0-255 RGB planes; x = (pixel*{n2.Scale} - mean[{string.Join(",", n2.Mean)}]) / std[{string.Join(",", n2.Std)}]; order {n2.Order}") });
        return proto;
    }

    private const string MLDomain = "ai.onnx.ml";

    // ML.NET's OnnxTransformer gives an output column slot names from a node named "mlnet.<output>.SlotNames" with a
    // keys_strings attribute (the convention of ML.NET's own ONNX export). The node is a LabelEncoder on a constant so
    // that the graph stays valid; nothing consumes its output.
    private static void AddSlotNames(GraphWriter g, string output, IReadOnlyList<string> names)
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
    private static string Normalize(GraphWriter g, string x, ImageNormalization n)
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

    // ---- weights ----

    internal sealed record Weights(Dictionary<string, (float[] Data, long[] Shape)> Tensors, Dictionary<string, long> Counters);

    private static Weights ReadWeights(RegNetModel model)
    {
        var tensors = new Dictionary<string, (float[], long[])>(StringComparer.Ordinal);
        var counters = new Dictionary<string, long>(StringComparer.Ordinal);
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            foreach (var (name, tensor) in CanonicalState(model))
            {
                if (tensor is null || tensor.IsInvalid)
                    throw new InvalidOperationException($"The RegNetModel has no usable weights: '{name}' was disposed. Export a live model (load or train its weights first; do not dispose it or its parameters).");
                var cpu = tensor.detach().cpu();
                if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal))
                {
                    counters[name] = cpu.item<long>();
                    continue;
                }
                if (cpu.dtype != ScalarType.Float32)
                    throw new InvalidOperationException($"Weight '{name}' is {cpu.dtype}; the ONNX exporter writes float32 models. Convert the model with model.to(torch.float32) first.");
                var data = cpu.contiguous().data<float>().ToArray();
                int bad = Array.FindIndex(data, v => !float.IsFinite(v));
                if (bad >= 0)
                    throw new InvalidOperationException($"The RegNetModel's weight '{name}' holds a non-finite value ({data[bad]}) at index {bad}; the model cannot be exported (check the training run, e.g. for a diverged loss).");
                tensors[name] = (data, cpu.shape.ToArray());
            }
        }
        catch (ObjectDisposedException e)
        {
            throw new InvalidOperationException("The RegNetModel has no usable weights (it was disposed). Export a live model.", e);
        }
        if (tensors.Count == 0)
            throw new InvalidOperationException("The RegNetModel has no usable weights (its state dict is empty; was it disposed?). Export a live model.");
        return new Weights(tensors, counters);
    }

    /// <summary>
    /// The state dict under its timm-style names. TorchSharp also lists every submodule held in a field under the field's
    /// name (<c>stem._conv.weight</c> next to <c>stem.conv.weight</c>, the same tensor); those aliases are skipped.
    /// </summary>
    internal static IEnumerable<KeyValuePair<string, Tensor>> CanonicalState(RegNetModel model) =>
        model.state_dict().Where(kv => !kv.Key.Split('.').Any(part => part.StartsWith('_')));

    // ---- protobuf helpers ----

    internal static TensorShapeProto.Types.Dimension Dim(int? value, string? param) =>
        value is { } v ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = param! };

    internal static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, params TensorShapeProto.Types.Dimension[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(dims);
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    internal static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    internal static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.Add(values);
        return a;
    }

    internal static AttributeProto Str(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    private sealed class GraphWriter(Weights weights, bool fold)
    {
        private readonly HashSet<string> _initializers = new(StringComparer.Ordinal);
        public GraphProto Graph { get; } = new();

        public string Node(string op, string[] inputs, string name, params AttributeProto[] attributes) =>
            Node(op, inputs, name, attributes, null);

        public string Node(string op, string[] inputs, string name, AttributeProto[] attributes, string? outputName)
        {
            string output = outputName ?? name;
            var node = new NodeProto { OpType = op, Name = name };
            node.Input.Add(inputs);
            node.Output.Add(output);
            node.Attribute.Add(attributes);
            Graph.Node.Add(node);
            return output;
        }

        public string Weight(string stateName)
        {
            if (!weights.Tensors.TryGetValue(stateName, out var t))
                throw new InvalidOperationException($"The model's state dict lacks '{stateName}'; the exporter and RegNetModel disagree on the layout.");
            return Floats(stateName, t.Data, t.Shape);
        }

        public string Floats(string name, float[] data, long[] shape)
        {
            if (!_initializers.Add(name)) return name;
            var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(data.AsSpan())) };
            tensor.Dims.Add(shape);
            Graph.Initializer.Add(tensor);
            return name;
        }

        public string Int64s(string name, params long[] data)
        {
            if (!_initializers.Add(name)) return name;
            var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(data.AsSpan())) };
            tensor.Dims.Add(data.Length);
            Graph.Initializer.Add(tensor);
            return name;
        }

        // Conv (+ BatchNormalization, or folded bias) (+ Relu). Tracks the spatial size when it is static, for TF-"same" pads.
        public string ConvNorm(string prefix, ConvNorm module, string x, ref int? spatial, PaddingStyle padding)
        {
            int k = module.Kernel, s = module.Stride;
            long groups = module.Conv.groups;
            var attrs = new List<AttributeProto> { Ints("kernel_shape", k, k), Ints("strides", s, s), Ints("dilations", 1, 1), Int("group", groups) };
            bool tfSame = padding == PaddingStyle.TensorFlowSame && s > 1 && k > 1;
            if (tfSame && spatial is null)
                attrs.Add(Str("auto_pad", "SAME_UPPER")); // out = ceil(in / stride), the odd pixel after: TF "same"
            else
            {
                long before = k / 2, after = k / 2;
                if (tfSame)
                {
                    long outSize = (spatial!.Value + s - 1) / s;
                    long total = Math.Max((outSize - 1) * s + k - spatial.Value, 0);
                    before = total / 2;
                    after = total - before;
                }
                attrs.Add(Ints("pads", before, before, after, after));
            }
            if (spatial is { } size)
                spatial = tfSame ? (size + s - 1) / s : (size + 2 * (k / 2) - k) / s + 1;

            string y;
            if (fold)
            {
                var (w, b) = Fold(prefix);
                y = Node("Conv", new[] { x, w, b }, $"{prefix}.conv", attrs.ToArray());
            }
            else
            {
                y = Node("Conv", new[] { x, Weight($"{prefix}.conv.weight") }, $"{prefix}.conv", attrs.ToArray());
                y = Node("BatchNormalization", new[] { y, Weight($"{prefix}.bn.weight"), Weight($"{prefix}.bn.bias"), Weight($"{prefix}.bn.running_mean"), Weight($"{prefix}.bn.running_var") },
                    $"{prefix}.bn", new AttributeProto { Name = "epsilon", Type = AttributeProto.Types.AttributeType.Float, F = (float)Modules.ConvNorm.BatchNormEps });
            }
            if (module.Activates) y = Node("Relu", new[] { y }, $"{prefix}.relu");
            return y;
        }

        private (string Weight, string Bias) Fold(string prefix)
        {
            var (w, shape) = weights.Tensors[$"{prefix}.conv.weight"];
            var gamma = weights.Tensors[$"{prefix}.bn.weight"].Data;
            var beta = weights.Tensors[$"{prefix}.bn.bias"].Data;
            var mean = weights.Tensors[$"{prefix}.bn.running_mean"].Data;
            var variance = weights.Tensors[$"{prefix}.bn.running_var"].Data;
            int outC = (int)shape[0], per = w.Length / outC;
            var fw = new float[w.Length];
            var fb = new float[outC];
            for (int c = 0; c < outC; c++)
            {
                double scale = gamma[c] / Math.Sqrt(variance[c] + Modules.ConvNorm.BatchNormEps);
                for (int i = 0; i < per; i++) fw[c * per + i] = (float)(w[c * per + i] * scale);
                fb[c] = (float)(beta[c] - mean[c] * scale);
            }
            return (Floats($"{prefix}.conv.weight", fw, shape), Floats($"{prefix}.conv.bias", fb, new long[] { outC }));
        }
    }
}
