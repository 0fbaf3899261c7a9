using TorchSharp.Utils;
using TorchSharp;
using TorchSharp.Modules;
using Microsoft.ML.RegNet.Onnx;
using Microsoft.ML.RegNet.Onnx.Proto;
using static Microsoft.ML.RegNet.Onnx.OnnxProtos;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Modules;

/// <summary>Convolution (no bias) → BatchNorm → optional ReLU. State-dict children: <c>conv</c>, <c>bn</c>.</summary>
internal sealed class ConvNorm : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    /// <summary>BatchNorm epsilon of every RegNet implementation.</summary>
    public const double BatchNormEps = 1e-5;

    /// <summary>BatchNorm momentum in PyTorch's convention (Keras 0.9 is the same update).</summary>
    public const double BatchNormMomentum = 0.1;

    [ComponentName(Name = "conv")]
    private readonly Conv2d _conv;
    [ComponentName(Name = "bn")]
    private readonly BatchNorm2d _bn;
    private readonly bool _activate;
    private readonly int _kernel;
    private readonly int _stride;

    public ConvNorm(long inChannels, long outChannels, int kernel, int stride = 1, long groups = 1, bool activate = true)
        : base(nameof(ConvNorm))
    {
        _kernel = kernel;
        _stride = stride;
        _activate = activate;
        _conv = nn.Conv2d(inChannels, outChannels, kernel, stride: stride, padding: kernel / 2, groups: groups, bias: false);
        _bn = nn.BatchNorm2d(outChannels, eps: BatchNormEps, momentum: BatchNormMomentum);
        RegisterComponents();
    }

    public Conv2d Conv => _conv;
    public BatchNorm2d Norm => _bn;
    public int Stride => _stride;
    public int Kernel => _kernel;
    public bool Activates => _activate;

    /// <summary>Padding of this convolution; only strided 3×3 convolutions differ between the styles.</summary>
    public PaddingStyle Padding { get; set; } = PaddingStyle.Symmetric;

    /// <summary>When set, normalises in training mode instead of the layer's own batch statistics (data-parallel
    /// SyncBatchNorm: statistics of every rank's images); evaluation always uses the running statistics.</summary>
    internal Func<Tensor, BatchNorm2d, Tensor>? TrainingNormalization { get; set; }

    private bool UsesTensorFlowSame => Padding == PaddingStyle.TensorFlowSame && _stride > 1 && _kernel > 1;

    // The convolution with BatchNorm folded in, while the layer is frozen (FoldNormalization); null otherwise.
    private (Tensor Weight, Tensor Bias)? _folded;

    /// <summary>For a frozen layer, whose BatchNorm is in eval mode and whose weights do not change: folds the running
    /// statistics and affine into the convolution (weight·γ/σ, bias β − μ·γ/σ), so that in eval mode the forward pass is one
    /// convolution with bias, as inference engines fuse it (BatchNorm is about a sixth of a RegNet trunk's eval time in
    /// PyTorch's profiler). The layer's own
    /// parameters and buffers are not touched; results differ from conv → BatchNorm by float rounding only.
    /// <paramref name="fold"/> false drops the folded copy; call it before the weights may change again.</summary>
    internal void FoldNormalization(bool fold)
    {
        _folded?.Weight.Dispose();
        _folded?.Bias.Dispose();
        _folded = null;
        if (!fold) return;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var scale = _bn.weight! / (_bn.running_var! + BatchNormEps).sqrt();
        var weight = (_conv.weight! * scale.view(-1, 1, 1, 1)).contiguous();
        var bias = _bn.bias! - _bn.running_mean! * scale;
        _folded = (weight.DetachFromDisposeScope(), bias.DetachFromDisposeScope());
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var (weight, bias) = !training && _folded is { } folded ? folded : (_conv.weight!, null);
        Tensor y;
        if (UsesTensorFlowSame)
        {
            var (top, bottom) = PadsFor(input.shape[2]);
            var (left, right) = PadsFor(input.shape[3]);
            var padded = nn.functional.pad(input, new long[] { left, right, top, bottom });
            y = nn.functional.conv2d(padded, weight, bias, strides: new long[] { _stride, _stride }, groups: _conv.groups);
        }
        else if (bias is not null)
        {
            long pad = _kernel / 2;
            y = nn.functional.conv2d(input, weight, bias, strides: new long[] { _stride, _stride }, padding: new long[] { pad, pad }, groups: _conv.groups);
        }
        else
        {
            y = _conv.call(input); // the layer pads kernel / 2 itself, as PadsFor says
        }
        if (bias is null) y = training && TrainingNormalization is { } normalize ? normalize(y, _bn) : _bn.call(y);
        if (_activate) y = nn.functional.relu(y, inplace: true);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Padding before and after one side of <paramref name="size"/> pixels, shared by the forward pass and the
    /// ONNX export. TensorFlow "same" pads so that out = ceil(in / stride), the odd pixel after; otherwise kernel / 2 each side.</summary>
    internal (long Before, long After) PadsFor(long size)
    {
        if (!UsesTensorFlowSame) return (_kernel / 2, _kernel / 2);
        long outSize = (size + _stride - 1) / _stride;
        long total = Math.Max((outSize - 1) * _stride + _kernel - size, 0);
        return (total / 2, total - total / 2);
    }

    /// <summary>Output side for an input side of <paramref name="size"/> pixels.</summary>
    internal long OutputSize(long size)
    {
        var (before, after) = PadsFor(size);
        return (size + before + after - _kernel) / _stride + 1;
    }

    // Conv (+ BatchNormalization, or folded) (+ Relu).
    OnnxValue IOnnxExportable.Export(OnnxGraphWriter graph, string prefix, OnnxValue input)
    {
        var attributes = new List<AttributeProto> { Ints("kernel_shape", _kernel, _kernel), Ints("strides", _stride, _stride), Ints("dilations", 1, 1), Int("group", _conv.groups) };
        if (input.Size is null && UsesTensorFlowSame)
        {
            attributes.Add(Str("auto_pad", "SAME_UPPER")); // the size is only known at run time: ONNX's name for TF "same"
        }
        else
        {
            var (before, after) = PadsFor(input.Size ?? 0); // without TF "same" the pads do not depend on the size
            attributes.Add(Ints("pads", before, before, after, after));
        }
        string y = graph.ConvolutionWithNorm(prefix, input.Name, attributes.ToArray(), BatchNormEps);
        if (_activate) y = graph.Node("Relu", new[] { y }, $"{prefix}.relu");
        return new OnnxValue(y, input.Size is { } size ? (int)OutputSize(size) : null);
    }
}
