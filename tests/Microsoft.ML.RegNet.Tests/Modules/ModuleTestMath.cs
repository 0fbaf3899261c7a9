using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Modules;

/// <summary>Reference arithmetic for the module tests, written out instead of calling the modules under test.</summary>
internal static class ModuleTestMath
{
    /// <summary>Eval-mode BatchNorm by its definition: (y − mean) / √(var + eps) · γ + β, per channel.</summary>
    public static Tensor BatchNorm(Tensor y, TorchSharp.Modules.BatchNorm2d bn)
    {
        var shape = new long[] { 1, -1, 1, 1 };
        return (y - bn.running_mean!.reshape(shape)) / (bn.running_var!.reshape(shape) + bn.eps).sqrt()
               * bn.weight!.reshape(shape) + bn.bias!.reshape(shape);
    }

    /// <summary>Gives a BatchNorm statistics and an affine map far from the identity, so a test sees whether it is applied.</summary>
    public static void Randomize(TorchSharp.Modules.BatchNorm2d bn, Generator generator)
    {
        using var _ = no_grad();
        long c = bn.running_mean!.shape[0];
        bn.running_mean!.copy_(randn(c, generator: generator));
        bn.running_var!.copy_(rand(c, generator: generator) + 0.5);
        bn.weight!.copy_(randn(c, generator: generator));
        bn.bias!.copy_(randn(c, generator: generator));
    }

    public static double MaxDifference(Tensor a, Tensor b) => (a - b).abs().max().item<float>();
}
