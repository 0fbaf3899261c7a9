using System.Runtime.InteropServices;
using TorchSharp;
using Microsoft.ML.RegNet.Runtime;

namespace Microsoft.ML.RegNet;

/// <summary>
/// Sets libtorch up for this library, once per process, and turns a failure to load it into a message that names the
/// cause and the fix. <see cref="Configure"/> is the one call; every entry point of the library (model construction,
/// training, weight loading, reading safetensors or Keras tensors) makes it before it creates a tensor.
/// </summary>
public static class TorchRuntime
{
    private const string RequiredGlibcxx = "GLIBCXX_3.4.32";
    private static readonly Lazy<TorchRuntimeReport> Configured = new(ConfigureOnce, LazyThreadSafetyMode.ExecutionAndPublication);
    private static int _runs;

    /// <summary>
    /// Environment variable that overrides the oneDNN decision: <c>on</c> keeps oneDNN convolutions even where the self-test
    /// finds them wrong, <c>off</c> always disables them, unset or <c>auto</c> disables them only when the self-test fails.
    /// </summary>
    public const string OneDnnVariable = "REGNET_ONEDNN";

    /// <summary>
    /// Configures libtorch for this process and returns what was done; later calls (from any thread) return the same report
    /// and change nothing. In order: glibc malloc thresholds (<c>REGNET_MALLOC_TUNING</c>), the oneDNN instruction-set cap
    /// (<c>ONEDNN_MAX_CPU_ISA</c>), loading libtorch, NNPACK off where it cannot start, then the float32-vs-float64
    /// convolution self-test that keeps or disables oneDNN (<see cref="OneDnnVariable"/>).
    /// </summary>
    /// <remarks>The ISA cap only takes effect if no convolution ran before this call: oneDNN reads it once, at its first
    /// primitive. <see cref="TorchRuntimeReport.LibTorchWasLoaded"/> says whether other code used libtorch first.
    /// libtorch 2.10's oneDNN AVX-512 kernels compute some 3×3 convolutions wrongly on AMD CPUs, so there oneDNN is capped
    /// at AVX2; if the self-test still finds wrong results, oneDNN is switched off for this process (PyTorch's own
    /// convolutions are then used: correct, about 2× slower for RegNetX-002 training).</remarks>
    /// <exception cref="InvalidOperationException">TorchSharp's native library cannot load (with a diagnosis), or a
    /// <c>REGNET_*</c> variable has an invalid value; every later call throws the same exception.</exception>
    public static TorchRuntimeReport Configure() => Configured.Value;

    /// <summary>The report of <see cref="Configure"/>, or null if it has not completed in this process.</summary>
    public static TorchRuntimeReport? Report => Configured.IsValueCreated ? Configured.Value : null;

    /// <summary>How many times the set-up itself ran in this process (1 after any number of <see cref="Configure"/> calls).</summary>
    internal static int ConfigurationRuns => Volatile.Read(ref _runs);

    /// <summary>Whether oneDNN (MKL-DNN) convolutions are in use in this process.</summary>
    public static bool OneDnnEnabled => LibTorchContext.MkldnnEnabled;

    /// <summary>How glibc's malloc was set up for libtorch (see <c>REGNET_MALLOC_TUNING</c>), for logs and bug reports.</summary>
    public static string NativeAllocator => Report?.NativeAllocator ?? "not set up";

    /// <summary>What the convolution self-test found when libtorch was first used, for logs and bug reports.</summary>
    public static string ConvolutionSelfTest => Report?.ConvolutionSelfTest ?? "not run";

    private static TorchRuntimeReport ConfigureOnce()
    {
        Interlocked.Increment(ref _runs);
        bool loadedBefore = LibTorchMapped();
        string allocator = NativeAllocatorTuning.Apply(); // before libtorch allocates its first tensors
        string isa = OneDnnIsaCap.Apply(); // before libtorch's first convolution: oneDNN reads the cap once
        try
        {
            using (torch.ones(1)) { } // loads libtorch
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException)
        {
            throw new InvalidOperationException(Diagnose(), e);
        }
        string nnpack = "NNPACK available";
        if (!LibTorchContext.NnpackAvailable)
        {
            LibTorchContext.DisableNnpack(); // before the probe, or every probe convolution logs the failed NNPACK start
            nnpack = "NNPACK unavailable on this CPU, disabled";
        }
        var (error, mode) = ChooseConvolutionBackend();
        return new TorchRuntimeReport(allocator, isa, nnpack, error, mode, LibTorchContext.MkldnnEnabled, torch.get_num_threads(), loadedBefore);
    }

    // Whether libtorch is already mapped into the process, i.e. someone used TorchSharp before Configure.
    private static bool LibTorchMapped() =>
        OperatingSystem.IsLinux() && File.ReadLines("/proc/self/maps").Any(line => line.EndsWith("/libtorch_cpu.so", StringComparison.Ordinal));

    private static (double Error, string Mode) ChooseConvolutionBackend()
    {
        string mode = (Environment.GetEnvironmentVariable(OneDnnVariable) ?? "auto").Trim().ToLowerInvariant();
        if (mode is not ("on" or "off" or "auto"))
            throw new InvalidOperationException($"{OneDnnVariable} must be on, off or auto (got '{mode}').");
        double error = LibTorchContext.MkldnnEnabled ? ConvolutionErrorProbe.MaxError() : 0;
        bool disable = mode == "off" || (mode == "auto" && error > ConvolutionErrorProbe.Tolerance);
        if (disable) LibTorchContext.MkldnnEnabled = false;
        return (error, mode);
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
