using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Modules;

/// <summary>The linear classifier on pooled features. State-dict child: <c>fc</c>.</summary>
public sealed class ClassifierHead : nn.Module<Tensor, Tensor>
{
    private readonly Linear _fc;

    public ClassifierHead(long features, long classes) : base(nameof(ClassifierHead))
    {
        _fc = nn.Linear(features, classes);
        register_module("fc", _fc);
    }

    public Linear Fc => _fc;

    public override Tensor forward(Tensor pooled) => _fc.call(pooled);
}
