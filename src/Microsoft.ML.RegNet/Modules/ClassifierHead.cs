using TorchSharp.Utils;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Modules;

/// <summary>The linear classifier on pooled features. State-dict child: <c>fc</c>.</summary>
public sealed class ClassifierHead : nn.Module<Tensor, Tensor>
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
}
