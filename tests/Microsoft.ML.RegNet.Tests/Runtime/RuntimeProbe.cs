using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.ML.RegNet.Runtime;
using Microsoft.ML.RegNet.Weights.Formats;

namespace Microsoft.ML.RegNet.Tests.Runtime;

/// <summary>
/// Entry point of this assembly, run by <see cref="RuntimeSetupTests"/> as <c>dotnet exec Microsoft.ML.RegNet.Tests.dll
/// runtime-probe FILE.safetensors</c>: a fresh process whose first library call reads safetensors, and whose main thread
/// then measures glibc's malloc (the initial thread uses glibc's main arena, so nothing else's allocations interfere).
/// Prints <c>key=value</c> lines.
/// </summary>
internal static class RuntimeProbe
{
    public const string Command = "runtime-probe";
    public const string PipelineCommand = "pipeline-probe";
    private const int Block = 16 << 20;
    private const int SmallBlock = 64 << 10;

    public static int Main(string[] args) => args switch
    {
        [Command, var path] => Run(path),
        [PipelineCommand] => RunPipeline(),
        _ => 0,
    };

    // A fresh process whose first library call reads image batches: the pipeline must configure libtorch before the
    // consumer creates the first batch tensor.
    private static int RunPipeline()
    {
        Console.WriteLine($"report_before_read={TorchRuntime.Report is not null}");
        var ml = new Microsoft.ML.MLContext(1);
        var rows = Enumerable.Range(0, 4).Select(i => new PipelineRow
        {
            Image = Data.TestImages.Encode(Data.TestImages.Pattern(12, 12, i)), LabelValue = i % 2,
        }).ToList();
        var raw = ml.Data.LoadFromEnumerable(rows);
        var data = ml.Transforms.Conversion.MapValueToKey("Label", nameof(PipelineRow.LabelValue)).Fit(raw).Transform(raw);
        var pipeline = new Microsoft.ML.RegNet.Data.Pipeline.ImageBatchPipeline(new() { BatchSize = 2, ImageSize = 8, Seed = 1, WorkerThreads = 1 });
        int batches = 0;
        foreach (var batch in pipeline.Read(data, epoch: 0))
            using (batch) batches++;
        var report = TorchRuntime.Report;
        Console.WriteLine($"batches={batches}");
        Console.WriteLine($"report_after_read={report is not null}");
        Console.WriteLine($"libtorch_was_loaded={report?.LibTorchWasLoaded}");
        return 0;
    }

    private sealed class PipelineRow
    {
        [Microsoft.ML.Data.VectorType]
        public byte[] Image { get; set; } = [];

        public float LabelValue { get; set; }
    }

    private static int Run(string safetensorsPath)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"report_before_read={TorchRuntime.Report is not null}");
        var (tensors, _) = Safetensors.Read(safetensorsPath);
        foreach (var t in tensors.Values) t.Dispose();
        var report = TorchRuntime.Report;
        Console.WriteLine($"report_after_read={report is not null}");
        Console.WriteLine($"libtorch_was_loaded={report?.LibTorchWasLoaded}");
        Console.WriteLine($"same_report_again={ReferenceEquals(report, TorchRuntime.Configure())}");
        Console.WriteLine($"configuration_runs={TorchRuntime.ConfigurationRuns}");
        Console.WriteLine($"native_allocator={TorchRuntime.NativeAllocator}");

        // trim threshold: 16 MiB of 64 KiB blocks (below any mmap threshold) freed again goes back to the kernel under
        // glibc's default 128 KiB trim threshold, so the main arena shrinks. Measured first: freeing a mapped block
        // raises glibc's dynamic trim threshold.
        var blocks = Enumerable.Range(0, Block / SmallBlock).Select(_ => Malloc(SmallBlock)).ToArray();
        var grown = MallInfo2();
        foreach (var p in blocks.Reverse()) Free(p);
        var after = MallInfo2();
        Console.WriteLine(string.Create(inv, $"arena_returned_mib={((long)grown.Arena - (long)after.Arena) / (1 << 20)}"));

        // mmap threshold: a 16 MiB block is mapped on its own (one more hblks) under glibc's default 128 KiB threshold.
        var before = MallInfo2();
        IntPtr block = Malloc(Block);
        var held = MallInfo2();
        Free(block);
        Console.WriteLine(string.Create(inv, $"big_block_mmapped={(long)held.Hblks - (long)before.Hblks}"));
        return 0;
    }

    private static IntPtr Malloc(int size)
    {
        IntPtr p = NativeMalloc((nuint)size);
        if (p == IntPtr.Zero) throw new OutOfMemoryException();
        Marshal.WriteByte(p, size - 1, 1); // touch it, so the block is really in use
        return p;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo
    {
        public nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    private static extern MallInfo MallInfo2();

    [DllImport("libc", EntryPoint = "malloc")]
    private static extern IntPtr NativeMalloc(nuint size);

    [DllImport("libc", EntryPoint = "free")]
    private static extern void Free(IntPtr pointer);
}
