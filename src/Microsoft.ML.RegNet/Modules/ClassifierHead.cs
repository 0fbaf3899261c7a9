using TorchSharp.Utils;
using TorchSharp;
using TorchSharp.Modules;
using Microsoft.ML.RegNet.Onnx;
using static Microsoft.ML.RegNet.Onnx.OnnxProtos;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Modules;

/// <summary>The linear classifier on pooled features. State-dict child: <c>fc</c>.</summary>
internal sealed class ClassifierHead : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    [ComponentName(Name = "fc")]
    private readonly Linear _fc;

    public ClassifierHead(long features, long classes) : base(nameof(ClassifierHead))
    {
        _fc = nn.Linear(features, classes);
        RegisterComponents();
    }

    public Linear Fc => _fc;

    public override Tensor forward(Tensor pooled) => _fc.call(pooled);

    // Pooled features (N × C) → logits; Gemm with transB takes the Linear weight as stored (classes × C).
    OnnxValue IOnnxExportable.Export(OnnxGraphWriter graph, string prefix, OnnxValue input) =>
        new(graph.Node("Gemm", new[] { input.Name, graph.Weight($"{prefix}.fc.weight"), graph.Weight($"{prefix}.fc.bias") }, $"{prefix}.fc", Int("transB", 1)), null);
}
