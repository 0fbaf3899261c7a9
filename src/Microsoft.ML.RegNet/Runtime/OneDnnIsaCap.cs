using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.RegNet.Runtime;

/// <summary>
/// Caps the instruction set oneDNN may generate kernels for, through the <c>ONEDNN_MAX_CPU_ISA</c> variable that oneDNN
/// reads once, at its first primitive. On AMD CPUs with AVX-512 (measured on an EPYC with AVX512_VP2INTERSECT), libtorch
/// 2.10's AVX-512 convolution kernels give wrong and nondeterministic 3×3 convolutions, while its AVX2 kernels are correct
/// and as fast (RegNetX-002 training step at 64×64, batch 128: 579 ms capped at AVX2, 664 ms uncapped, 1244 ms without oneDNN).
/// </summary>
internal static class OneDnnIsaCap
{
    public const string Variable = "ONEDNN_MAX_CPU_ISA";
    private const string LegacyVariable = "DNNL_MAX_CPU_ISA";
    private const string AvxCap = "AVX2";

    /// <summary>
    /// Sets the cap in the native environment when this CPU needs it and the user has not chosen one; must run before
    /// libtorch's first convolution. Returns a description for <see cref="TorchRuntime.ConvolutionSelfTest"/>.
    /// </summary>
    public static string Apply()
    {
        string? chosen = Environment.GetEnvironmentVariable(Variable) ?? Environment.GetEnvironmentVariable(LegacyVariable);
        if (chosen is not null) return $"oneDNN ISA {chosen} (set by the environment)";
        if (!NeedsCap()) return "oneDNN ISA uncapped";
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return "oneDNN ISA uncapped (cannot set the native environment on this OS)";
        // .NET keeps its own copy of the environment on Unix; oneDNN calls getenv, so the variable goes through libc.
        if (SetNativeEnvironment(Variable, AvxCap, overwrite: 0) != 0)
            return $"oneDNN ISA uncapped (setenv failed with errno {Marshal.GetLastPInvokeError()})";
        Environment.SetEnvironmentVariable(Variable, AvxCap);
        return $"oneDNN ISA capped at {AvxCap} (AMD CPU with AVX-512)";
    }

    private static bool NeedsCap() => X86Base.IsSupported && Avx512F.IsSupported && Vendor() == "AuthenticAMD";

    private static string Vendor()
    {
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<int> words = stackalloc int[] { ebx, edx, ecx };
        return System.Text.Encoding.ASCII.GetString(MemoryMarshal.AsBytes(words));
    }

    [DllImport("libc", EntryPoint = "setenv", SetLastError = true)]
    private static extern int SetNativeEnvironment(string name, string value, int overwrite);
}
