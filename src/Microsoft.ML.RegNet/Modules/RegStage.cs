using Microsoft.ML.RegNet.Onnx;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Modules;

/// <summary>A stage: blocks <c>b1</c>…<c>bN</c>, the first one strided.</summary>
internal sealed class RegStage : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Bottleneck[] _blocks;

    public RegStage(IEnumerable<BlockSpec> blocks) : base(nameof(RegStage))
    {
        _blocks = blocks.Select(b => new Bottleneck(b)).ToArray();
        foreach (var block in _blocks) register_module($"b{block.Spec.Index}", block);
        RegisterComponents();
    }

    public IReadOnlyList<Bottleneck> Blocks => _blocks;

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input;
        foreach (var block in _blocks) x = block.call(x);
        return x.MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.Export(OnnxGraphWriter graph, string prefix, OnnxValue input)
    {
        var x = input;
        foreach (var block in _blocks) x = graph.Module(block, $"{prefix}.b{block.Spec.Index}", x);
        return x;
    }
}
