using System.Runtime.InteropServices;
using TorchSharp;

namespace Microsoft.ML.RegNet.Runtime;

/// <summary>
/// Makes sure libtorch can be used, and turns a failure to load it into a message that names the cause and the fix.
/// </summary>
public static class TorchRuntime
{
    private const string RequiredGlibcxx = "GLIBCXX_3.4.32";
    private static readonly Lazy<Exception?> LoadError = new(TryLoad, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// Environment variable that overrides the oneDNN decision: <c>on</c> keeps oneDNN convolutions even where the self-test
    /// finds them wrong, <c>off</c> always disables them, unset or <c>auto</c> disables them only when the self-test fails.
    /// </summary>
    public const string OneDnnVariable = "REGNET_ONEDNN";

    /// <summary>Throws <see cref="InvalidOperationException"/> with a diagnosis when TorchSharp's native library cannot load.</summary>
    /// <remarks>On first use it also runs <see cref="ConvolutionSelfTest"/>. libtorch 2.10's oneDNN AVX-512 kernels compute some
    /// 3×3 convolutions wrongly on AMD CPUs, so there oneDNN is first capped at AVX2 (unless <c>ONEDNN_MAX_CPU_ISA</c> is set);
    /// if the self-test still finds wrong results, oneDNN is switched off for this process (PyTorch's own convolutions are
    /// then used: correct, about 2× slower for RegNetX-002 training).</remarks>
    public static void EnsureAvailable()
    {
        if (LoadError.Value is { } error) throw error;
    }

    /// <summary>Whether oneDNN (MKL-DNN) convolutions are in use in this process.</summary>
    public static bool OneDnnEnabled => LibTorchContext.MkldnnEnabled;

    /// <summary>How glibc's malloc was set up for libtorch (see <c>REGNET_MALLOC_TUNING</c>), for logs and bug reports.</summary>
    public static string NativeAllocator { get; private set; } = "not set up";

    /// <summary>What the convolution self-test found when libtorch was first used, for logs and bug reports.</summary>
    public static string ConvolutionSelfTest { get; private set; } = "not run";

    private static Exception? TryLoad()
    {
        try
        {
            NativeAllocator = NativeAllocatorTuning.Apply(); // before libtorch allocates its first tensors
            string isa = OneDnnIsaCap.Apply(); // before libtorch's first convolution: oneDNN reads the cap once
            using var probe = torch.ones(1);
            string nnpack = "";
            if (!LibTorchContext.NnpackAvailable)
            {
                LibTorchContext.DisableNnpack(); // before the probe, or every probe convolution logs the failed NNPACK start
                nnpack = "; NNPACK unavailable on this CPU, disabled";
            }
            ConvolutionSelfTest = ChooseConvolutionBackend() + "; " + isa + nnpack;
            return null;
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException)
        {
            return new InvalidOperationException(Diagnose(), e);
        }
    }

    private static string ChooseConvolutionBackend()
    {
        string mode = (Environment.GetEnvironmentVariable(OneDnnVariable) ?? "auto").Trim().ToLowerInvariant();
        double error = LibTorchContext.MkldnnEnabled ? ConvolutionErrorProbe.MaxError() : 0;
        bool broken = error > ConvolutionErrorProbe.Tolerance;
        bool disable = mode switch
        {
            "on" => false,
            "off" => true,
            "auto" => broken,
            _ => throw new InvalidOperationException($"{OneDnnVariable} must be on, off or auto (got '{mode}')."),
        };
        if (disable) LibTorchContext.MkldnnEnabled = false;
        return FormattableString.Invariant(
            $"oneDNN convolution max error {error:E2} ({(broken ? "wrong" : "correct")}); {OneDnnVariable}={mode}; oneDNN {(LibTorchContext.MkldnnEnabled ? "enabled" : "disabled")}");
    }

    /// <summary>Explains why libtorch did not load on this host.</summary>
    internal static string Diagnose()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
            return "TorchSharp's native library (LibTorchSharp) could not be loaded. Make sure the application references " +
                   "TorchSharp-cpu (or a libtorch package for this platform) with the same version as TorchSharp (0.107.0).";

        var lib = FindOutputLibrary();
        bool hostHasSymbolVersion = HostLibStdCxxHas(RequiredGlibcxx);
        if (lib is not null && !hostHasSymbolVersion)
            return $"TorchSharp's native library {lib} requires {RequiredGlibcxx} (the libstdc++ of GCC 13), and this host's " +
                   "libstdc++ is older (Debian 12 and Ubuntu 22.04 stop at GLIBCXX_3.4.30). Microsoft.ML.RegNet fixes this at build time " +
                   "by marking that requirement weak in the copy in your output folder; that step did not run for this build. " +
                   "Fix: reference the Microsoft.ML.RegNet package (its buildTransitive targets do it) or import " +
                   "build/Microsoft.ML.RegNet.targets in your project, keep RegNetPatchLibTorchSharp unset or true, and rebuild. " +
                   "Alternatively install a libstdc++ from GCC 13 or newer.";
        if (lib is null)
            return "TorchSharp's native library libLibTorchSharp.so was not found next to the application. Reference TorchSharp-cpu 0.107.0 " +
                   "(it brings libtorch-cpu-linux-x64 2.10.0), rebuild, and run from the build output folder.";
        return $"TorchSharp's native library {lib} was found but could not be loaded. Run 'ldd {lib}' to see which dependency is missing.";
    }

    private static string? FindOutputLibrary()
    {
        foreach (var candidate in new[]
                 {
                     Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so"),
                     Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
                 })
            if (File.Exists(candidate)) return candidate;
        return null;
    }

    private static bool HostLibStdCxxHas(string versionName)
    {
        string[] candidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
        };
        var path = candidates.FirstOrDefault(File.Exists);
        return path is not null && IndexOf(File.ReadAllBytes(path), System.Text.Encoding.ASCII.GetBytes(versionName + "\0")) >= 0;
    }

    private static int IndexOf(byte[] haystack, byte[] needle) =>
        haystack.AsSpan().IndexOf(needle);
}
