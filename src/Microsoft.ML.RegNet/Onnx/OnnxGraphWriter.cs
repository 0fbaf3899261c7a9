using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.RegNet.Onnx.Proto;
using static Microsoft.ML.RegNet.Onnx.OnnxProtos;

namespace Microsoft.ML.RegNet.Onnx;

/// <summary>
/// The graph that <see cref="IOnnxExportable"/> modules append to: nodes in call order, and initializers named after the
/// state-dict entries they come from (which is what lets <see cref="RegNetOnnxImporter"/> read the weights back).
/// With <paramref name="foldBatchNorm"/> each Conv → BatchNormalization pair is written as one Conv with a bias.
/// </summary>
internal sealed class OnnxGraphWriter(ExportedWeights weights, bool foldBatchNorm)
{
    private readonly HashSet<string> _initializers = new(StringComparer.Ordinal);

    public GraphProto Graph { get; } = new();

    /// <summary>Has <paramref name="module"/> append its nodes under the state-dict prefix <paramref name="prefix"/>.</summary>
    public OnnxValue Module(IOnnxExportable module, string prefix, OnnxValue input) => module.Export(this, prefix, input);

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

    /// <summary>The initializer holding the state-dict entry <paramref name="stateName"/>.</summary>
    public string Weight(string stateName)
    {
        if (!weights.Tensors.TryGetValue(stateName, out var t))
            throw new InvalidOperationException($"The model's state dict lacks '{stateName}'; the exporter and RegNetModel disagree on the layout.");
        return Floats(stateName, t.Data, t.Shape);
    }

    public string Floats(string name, float[] data, long[] shape) =>
        Initializer(name, TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(data.AsSpan()), shape);

    public string Int64s(string name, params long[] data) =>
        Initializer(name, TensorProto.Types.DataType.Int64, MemoryMarshal.AsBytes(data.AsSpan()), new long[] { data.Length });

    /// <summary>Conv over <paramref name="input"/> with the weights of <c>{prefix}.conv</c>, normalised by <c>{prefix}.bn</c>:
    /// a BatchNormalization node, or folded into the Conv's weight and bias.</summary>
    public string ConvolutionWithNorm(string prefix, string input, AttributeProto[] convAttributes, double epsilon)
    {
        if (foldBatchNorm)
        {
            var (w, b) = Fold(prefix, epsilon);
            return Node("Conv", new[] { input, w, b }, $"{prefix}.conv", convAttributes);
        }
        string y = Node("Conv", new[] { input, Weight($"{prefix}.conv.weight") }, $"{prefix}.conv", convAttributes);
        return Node("BatchNormalization", new[] { y, Weight($"{prefix}.bn.weight"), Weight($"{prefix}.bn.bias"), Weight($"{prefix}.bn.running_mean"), Weight($"{prefix}.bn.running_var") },
            $"{prefix}.bn", Float("epsilon", (float)epsilon));
    }

    // Raw little-endian data (the exporter refuses big-endian hosts); a name already written is reused, not repeated.
    private string Initializer(string name, TensorProto.Types.DataType type, ReadOnlySpan<byte> data, long[] shape)
    {
        if (!_initializers.Add(name)) return name;
        var tensor = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(data) };
        tensor.Dims.Add(shape);
        Graph.Initializer.Add(tensor);
        return name;
    }

    // W′ = W·γ/√(σ²+ε) per output channel, b′ = β − μ·γ/√(σ²+ε), computed in double.
    private (string Weight, string Bias) Fold(string prefix, double epsilon)
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
            double scale = gamma[c] / Math.Sqrt(variance[c] + epsilon);
            for (int i = 0; i < per; i++) fw[c * per + i] = (float)(w[c * per + i] * scale);
            fb[c] = (float)(beta[c] - mean[c] * scale);
        }
        return (Floats($"{prefix}.conv.weight", fw, shape), Floats($"{prefix}.conv.bias", fb, new long[] { outC }));
    }
}
