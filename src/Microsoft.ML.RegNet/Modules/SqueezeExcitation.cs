using TorchSharp.Utils;
using TorchSharp;
using TorchSharp.Modules;
using Microsoft.ML.RegNet.Onnx;
using static Microsoft.ML.RegNet.Onnx.OnnxProtos;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Modules;

/// <summary>Squeeze-and-excitation: GAP → 1×1 conv (bias) → ReLU → 1×1 conv (bias) → sigmoid → channel scale.
/// State-dict children: <c>fc1</c>, <c>fc2</c>.</summary>
internal sealed class SqueezeExcitation : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    [ComponentName(Name = "fc1")]
    private readonly Conv2d _fc1;
    [ComponentName(Name = "fc2")]
    private readonly Conv2d _fc2;

    public SqueezeExcitation(long channels, long squeezeChannels) : base(nameof(SqueezeExcitation))
    {
        _fc1 = nn.Conv2d(channels, squeezeChannels, 1, bias: true);
        _fc2 = nn.Conv2d(squeezeChannels, channels, 1, bias: true);
        RegisterComponents();
    }

    public Conv2d Squeeze => _fc1;
    public Conv2d Excite => _fc2;

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var s = input.mean(new long[] { 2, 3 }, keepdim: true);
        s = nn.functional.relu(_fc1.call(s), inplace: true);
        s = _fc2.call(s).sigmoid_();
        return (input * s).MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.Export(OnnxGraphWriter graph, string prefix, OnnxValue input)
    {
        string s = graph.Node("GlobalAveragePool", new[] { input.Name }, $"{prefix}.pool");
        s = graph.Node("Conv", new[] { s, graph.Weight($"{prefix}.fc1.weight"), graph.Weight($"{prefix}.fc1.bias") }, $"{prefix}.fc1", Ints("kernel_shape", 1, 1));
        s = graph.Node("Relu", new[] { s }, $"{prefix}.relu");
        s = graph.Node("Conv", new[] { s, graph.Weight($"{prefix}.fc2.weight"), graph.Weight($"{prefix}.fc2.bias") }, $"{prefix}.fc2", Ints("kernel_shape", 1, 1));
        s = graph.Node("Sigmoid", new[] { s }, $"{prefix}.gate");
        return input with { Name = graph.Node("Mul", new[] { input.Name, s }, $"{prefix}.scale") };
    }
}
