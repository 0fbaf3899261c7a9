using TorchSharp.Utils;
using TorchSharp;
using Microsoft.ML.RegNet.Onnx;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Modules;

/// <summary>
/// The X block (and, with SE, the Y block): 1×1 → grouped 3×3 (strided) → [SE] → 1×1, plus the shortcut, then ReLU.
/// State-dict children (timm names): <c>conv1</c>, <c>conv2</c>, <c>se</c>, <c>conv3</c>, <c>downsample</c>.
/// </summary>
internal sealed class Bottleneck : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    [ComponentName(Name = "conv1")]
    private readonly ConvNorm _conv1;
    [ComponentName(Name = "conv2")]
    private readonly ConvNorm _conv2;
    [ComponentName(Name = "se")]
    private readonly SqueezeExcitation? _se;
    [ComponentName(Name = "conv3")]
    private readonly ConvNorm _conv3;
    [ComponentName(Name = "downsample")]
    private readonly ConvNorm? _downsample;

    public Bottleneck(BlockSpec block) : base(nameof(Bottleneck))
    {
        Spec = block;
        _conv1 = new ConvNorm(block.InWidth, block.BottleneckWidth, 1);
        _conv2 = new ConvNorm(block.BottleneckWidth, block.BottleneckWidth, 3, block.Stride, block.Groups);
        _se = block.SeWidth > 0 ? new SqueezeExcitation(block.BottleneckWidth, block.SeWidth) : null;
        _conv3 = new ConvNorm(block.BottleneckWidth, block.OutWidth, 1, activate: false);
        _downsample = block.HasProjection ? new ConvNorm(block.InWidth, block.OutWidth, 1, block.Stride, activate: false) : null;
        RegisterComponents();
    }

    public BlockSpec Spec { get; }
    public ConvNorm Conv1 => _conv1;
    public ConvNorm Conv2 => _conv2;
    public SqueezeExcitation? SqueezeExcitation => _se;
    public ConvNorm Conv3 => _conv3;
    public ConvNorm? Downsample => _downsample;

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var branch = _conv2.call(_conv1.call(input));
        if (_se is not null) branch = _se.call(branch);
        branch = _conv3.call(branch);
        var shortcut = _downsample is null ? input : _downsample.call(input);
        return nn.functional.relu(branch + shortcut, inplace: true).MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.Export(OnnxGraphWriter graph, string prefix, OnnxValue input)
    {
        var branch = graph.Module(_conv1, $"{prefix}.conv1", input);
        branch = graph.Module(_conv2, $"{prefix}.conv2", branch);
        if (_se is not null) branch = graph.Module(_se, $"{prefix}.se", branch);
        branch = graph.Module(_conv3, $"{prefix}.conv3", branch);
        var shortcut = _downsample is null ? input : graph.Module(_downsample, $"{prefix}.downsample", input);
        string sum = graph.Node("Add", new[] { branch.Name, shortcut.Name }, $"{prefix}.add");
        return branch with { Name = graph.Node("Relu", new[] { sum }, $"{prefix}.act") };
    }
}
