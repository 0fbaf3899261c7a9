using System.Diagnostics;
using Microsoft.ML.RegNet.Runtime;
using Microsoft.ML.RegNet.Tests.Weights;

namespace Microsoft.ML.RegNet.Tests.Runtime;

/// <summary><see cref="TorchRuntime.Configure"/>: once per process, reported, and made by the entry points themselves.</summary>
[TestClass]
public sealed class RuntimeSetupTests
{
    [TestMethod]
    public void ConfigureRunsOnceAndReturnsTheSameReport()
    {
        var first = TorchRuntime.Configure();
        int runs = TorchRuntime.ConfigurationRuns;
        var second = TorchRuntime.Configure();
        var concurrent = Enumerable.Range(0, 8).AsParallel().Select(_ => TorchRuntime.Configure()).ToList();

        Assert.AreEqual(1, runs);
        Assert.AreEqual(1, TorchRuntime.ConfigurationRuns, "a second call must not configure again");
        Assert.AreSame(first, second);
        Assert.IsTrue(concurrent.All(r => ReferenceEquals(r, first)));
        Assert.AreSame(first, TorchRuntime.Report);
    }

    [TestMethod]
    public void TheReportSaysWhatWasDone()
    {
        var report = TorchRuntime.Configure();
        // Every part of the set-up is named, and the one-line forms (config.json's fields) are built from the same record.
        Assert.IsFalse(string.IsNullOrWhiteSpace(report.NativeAllocator));
        StringAssert.StartsWith(report.OneDnnIsa, "oneDNN ISA");
        StringAssert.StartsWith(report.Nnpack, "NNPACK");
        Assert.AreEqual(TorchSharp.torch.get_num_threads(), report.Threads);
        Assert.AreEqual(report.OneDnnEnabled, TorchRuntime.OneDnnEnabled);
        Assert.AreEqual(report.NativeAllocator, TorchRuntime.NativeAllocator);
        Assert.AreEqual(report.ConvolutionSelfTest, TorchRuntime.ConvolutionSelfTest);
        StringAssert.Contains(report.ConvolutionSelfTest, report.OneDnnIsa);
        StringAssert.Contains(report.ToString(), report.NativeAllocator);
        // In auto mode the decision follows the measured error: a wrong oneDNN must have been switched off.
        if (report.OneDnnMode == "auto" && !report.OneDnnCorrect) Assert.IsFalse(report.OneDnnEnabled, report.ToString());
        if (report.OneDnnMode == "off") Assert.IsFalse(report.OneDnnEnabled, report.ToString());
    }

    [TestMethod]
    public void ReadingSafetensorsFirstInAFreshProcessConfiguresBeforeLibTorchIsUsed()
    {
        var output = RunProbe(mallocTuning: null);
        Assert.AreEqual("False", output["report_before_read"]);
        Assert.AreEqual("True", output["report_after_read"], "Safetensors.Read must configure the runtime");
        Assert.AreEqual("False", output["libtorch_was_loaded"], "the set-up must come before the first tensor");
        Assert.AreEqual("True", output["same_report_again"]);
        Assert.AreEqual("1", output["configuration_runs"]);
    }

    [TestMethod]
    public void ReadingImageBatchesFirstInAFreshProcessConfiguresBeforeLibTorchIsUsed()
    {
        var output = RunProbe(mallocTuning: null, RuntimeProbe.PipelineCommand);
        Assert.AreEqual("False", output["report_before_read"]);
        Assert.AreEqual("2", output["batches"]);
        Assert.AreEqual("True", output["report_after_read"], "ImageBatchPipeline.Read must configure the runtime");
        Assert.AreEqual("False", output["libtorch_was_loaded"], "the set-up must come before the first batch tensor");
    }

    [TestMethod]
    public void OnGlibcTheMallocThresholdsAreRaisedUnlessTheUserChose()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("glibc's malloc is Linux-only.");
        // Measured in fresh processes: mallopt's settings are process-wide and other tests' allocations move glibc's
        // dynamic thresholds. REGNET_MALLOC_TUNING=off is the control that shows the measurement sees glibc's defaults.
        var untuned = RunProbe(mallocTuning: "off");
        StringAssert.Contains(untuned["native_allocator"], "untouched");
        Assert.AreEqual("1", untuned["big_block_mmapped"], "glibc's default maps a 16 MiB block");
        Assert.IsGreaterThanOrEqualTo(8, int.Parse(untuned["arena_returned_mib"]), "glibc's default trims freed heap top");

        var tuned = RunProbe(mallocTuning: null);
        Assert.AreEqual("malloc mmap threshold 32 MiB, trim threshold 1024 MiB", tuned["native_allocator"]);
        Assert.AreEqual("0", tuned["big_block_mmapped"], "a 16 MiB block must come from the heap");
        Assert.AreEqual("0", tuned["arena_returned_mib"], "freed heap memory must stay in the process");
    }

    private static readonly string[] MallocSettings =
        { "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_", "GLIBC_TUNABLES", "LD_PRELOAD", "REGNET_MALLOC_TUNING" };

    private static Dictionary<string, string> RunProbe(string? mallocTuning, params string[] command)
    {
        if (command.Length == 0) command = [RuntimeProbe.Command, WeightFixtures.PathOf("reference.safetensors")];
        // The SDK tells test processes which dotnet runs them; plain "dotnet" from PATH otherwise.
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "exec", typeof(RuntimeProbe).Assembly.Location }.Concat(command))
            start.ArgumentList.Add(arg);
        foreach (var name in MallocSettings) start.Environment.Remove(name);
        if (mallocTuning is not null) start.Environment["REGNET_MALLOC_TUNING"] = mallocTuning;
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.IsTrue(process.WaitForExit(120_000), "the probe process did not finish in 2 minutes");
        Assert.AreEqual(0, process.ExitCode, $"probe failed:\n{stdout}\n{stderr.Result}");
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1]);
    }
}
