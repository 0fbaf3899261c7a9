using System.Runtime.InteropServices;

namespace Microsoft.ML.RegNet.Runtime;

/// <summary>
/// Keeps the memory libtorch frees inside the process. libtorch allocates activations and gradients with glibc's malloc;
/// with glibc's defaults, blocks above the (dynamic) mmap threshold are mapped and unmapped on every step and free memory
/// at the top of the heap goes back to the kernel, so each training step page-faults its working set in again. Raising
/// both thresholds with <c>mallopt</c> (what <c>MALLOC_MMAP_THRESHOLD_</c> / <c>MALLOC_TRIM_THRESHOLD_</c> do at process
/// start) measured, for a RegNetX-002 training step on the 2-core VM: 64×64 batch 128 486 → 275 ms, 224×224 batch 16
/// 689 → 340 ms, peak RSS 684 → 639 MB (docs/benchmarks.md).
/// </summary>
internal static class NativeAllocatorTuning
{
    /// <summary><c>off</c> leaves glibc's malloc settings alone.</summary>
    public const string Variable = "REGNET_MALLOC_TUNING";

    // glibc's largest mmap threshold on 64-bit (HEAP_MAX_SIZE / 2); larger blocks are always mapped.
    private const int MmapThreshold = 32 << 20;
    private const int TrimThreshold = 1 << 30;
    private const int M_TRIM_THRESHOLD = -1;
    private const int M_MMAP_THRESHOLD = -3;

    private static readonly string[] UserSettings = { "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_", "GLIBC_TUNABLES" };

    /// <summary>Applies the thresholds where they help and nobody chose otherwise; returns what was done, for logs.</summary>
    public static string Apply()
    {
        string mode = (Environment.GetEnvironmentVariable(Variable) ?? "on").Trim().ToLowerInvariant();
        if (mode is not ("on" or "off"))
            throw new InvalidOperationException($"{Variable} must be on or off (got '{mode}').");
        if (mode == "off") return $"malloc thresholds untouched ({Variable}=off)";
        if (!OperatingSystem.IsLinux()) return "malloc thresholds untouched (not Linux)";
        if (UserSettings.FirstOrDefault(v => Environment.GetEnvironmentVariable(v) is not null) is { } chosen)
            return $"malloc thresholds untouched ({chosen} is set)";
        if (Environment.GetEnvironmentVariable("LD_PRELOAD") is { } preload && preload.Contains("malloc", StringComparison.OrdinalIgnoreCase))
            return "malloc thresholds untouched (another allocator is preloaded)";
        try
        {
            // mallopt returns 1 on success; musl and other libcs without it throw EntryPointNotFoundException.
            bool mmap = MallOpt(M_MMAP_THRESHOLD, MmapThreshold) == 1, trim = MallOpt(M_TRIM_THRESHOLD, TrimThreshold) == 1;
            return (mmap ? $"malloc mmap threshold {MmapThreshold >> 20} MiB" : "malloc mmap threshold refused by mallopt") + ", " +
                   (trim ? $"trim threshold {TrimThreshold >> 20} MiB" : "trim threshold refused by mallopt");
        }
        catch (EntryPointNotFoundException)
        {
            return "malloc thresholds untouched (this libc has no mallopt)";
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);
}
