using System.Diagnostics;
using Microsoft.ML.RegNet.Weights;
using Microsoft.ML.RegNet.Weights.Formats;
using static Microsoft.ML.RegNet.Tests.Weights.HostileFiles;
using static Microsoft.ML.RegNet.Tests.Weights.WeightFixtures;

namespace Microsoft.ML.RegNet.Tests.Weights;

/// <summary>
/// Hostile weight files, written byte by byte here: each is refused with an <see cref="InvalidDataException"/> that
/// names the file and the tensor, before anything large is allocated. One test per kind of hostile file.
/// </summary>
[TestClass]
public sealed class HostileWeightFileTests
{
    private string _dir = "";

    [TestInitialize]
    public void CreateDirectory() => _dir = TempDir();

    [TestCleanup]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [TestMethod]
    public void HandWrittenCheckpointsLoadWhenWellFormed()
    {
        // The writer's files are valid, so the refusals below come from what each declares, not from the writer.
        var transposed = new View([2, 3], [1, 2]);
        foreach (var (name, bytes) in new[] { ("ok.pth", TorchZip(transposed, 6, 6)), ("ok_legacy.pth", TorchLegacy(transposed, 6, 6)) })
        {
            var (tensors, wrapper) = TorchPickle.ReadStateDict(Write(name, bytes));
            Assert.IsNull(wrapper);
            using var weight = tensors["weight"];
            CollectionAssert.AreEqual(new long[] { 2, 3 }, weight.shape, name);
            CollectionAssert.AreEqual(new float[] { 0, 2, 4, 1, 3, 5 }, weight.data<float>().ToArray(), name);
        }
    }

    [TestMethod]
    public void OversizedStrideZeroViewIsRefusedQuicklyWithoutAllocating()
    {
        // 30000 × 30000 floats (3.6 GB) declared over a one-element storage with stride 0: a file of a few hundred bytes.
        byte[] bytes = TorchZip(new View([30000, 30000], [0, 0]), 1, 1);
        Assert.IsLessThan(1024, bytes.Length);
        string path = Write("oversized_view.pth", bytes);
        using var model = new RegNetModel(TinyY, NumberOfClasses);

        long rssBefore = ResetPeakResidentBytes();
        var clock = Stopwatch.StartNew();
        var e = Assert.ThrowsExactly<InvalidDataException>(() => RegNetWeights.Load(model, path));
        clock.Stop();
        long peakGrowth = PeakResidentBytes() - rssBefore;

        AssertNames(e, path, "repeat storage elements");
        StringAssert.Contains(e.Message, "[30000, 30000]");
        Assert.IsLessThan(1.0, clock.Elapsed.TotalSeconds, $"refusing took {clock.Elapsed.TotalSeconds:F3} s");
        Assert.IsLessThan(300L << 20, peakGrowth, $"peak RSS grew by {peakGrowth >> 20} MB");
        Console.WriteLine($"{bytes.Length}-byte file refused in {clock.Elapsed.TotalMilliseconds:F1} ms; peak RSS growth {peakGrowth / 1024} kB");
    }

    [TestMethod]
    public void NegativeStrideIsRefused() =>
        AssertRefused(TorchZip(new View([4], [-1], Offset: 3), 4, 4), "negative size, stride or offset");

    [TestMethod]
    public void NegativeSizeIsRefused() =>
        AssertRefused(TorchZip(new View([-4], [1]), 4, 4), "negative size, stride or offset");

    [TestMethod]
    public void ShapeWhoseSizeOverflowsIsRefused() =>
        AssertRefused(TorchZip(new View([1L << 40, 1L << 40], [1, 1]), 4, 4), "overflows 64 bits");

    [TestMethod]
    public void ExtentThatOverflowsIsRefused() =>
        AssertRefused(TorchZip(new View([2], [long.MaxValue]), 4, 4), "overflows 64 bits");

    [TestMethod]
    public void OffsetBeyondStorageIsRefused() =>
        AssertRefused(TorchZip(new View([4], [1], Offset: 10), 4, 4), "reads up to element 14 of a storage of 4 elements");

    [TestMethod]
    public void ViewLargerThanItsStorageIsRefused() =>
        AssertRefused(TorchZip(new View([8, 8], [8, 1]), 16, 16), "reads up to element 64 of a storage of 16 elements");

    [TestMethod]
    public void StorageLargerThanTheFileIsRefused()
    {
        // The pickle declares a storage of 2^40 floats; the archive entry holds 16 bytes.
        var e = AssertRefused(TorchZip(new View([4], [1]), 1L << 40, 4), "archive entry holds 16 bytes");
        StringAssert.Contains(e.Message, "storage '0'");
    }

    [TestMethod]
    public void LegacyStorageLargerThanTheFileIsRefused()
    {
        var e = AssertRefused(TorchLegacy(new View([4], [1]), 1L << 40, 4), "only 16 remain in the file");
        StringAssert.Contains(e.Message, "storage '0'");
    }

    [TestMethod]
    public void LegacyOversizedViewIsRefused() =>
        AssertRefused(TorchLegacy(new View([30000, 30000], [0, 0]), 1, 1), "repeat storage elements");

    [TestMethod]
    public void TruncatedZipEntryIsRefused()
    {
        // The zip's headers say the storage entry holds 1 MB; the file is a few hundred bytes.
        byte[] bytes = TorchZip(new View([4], [1]), 4, 4);
        ForgeZipEntrySize(bytes, "archive/data/0", 1 << 20);
        var e = AssertRefused(bytes, "claims 1048576 bytes in a file of");
        StringAssert.Contains(e.Message, "archive/data/0");
    }

    [TestMethod]
    public void SafetensorsDataOffsetsOutsideTheFileAreRefused() =>
        AssertSafetensorsRefused(
            """{"weight":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}""", 16, "lies outside the data section of 16 bytes");

    [TestMethod]
    public void SafetensorsOverlappingTensorsAreRefused() =>
        AssertSafetensorsRefused(
            """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"weight":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""", 24, "overlap");

    [TestMethod]
    public void SafetensorsHeaderLongerThanTheFileIsRefused()
    {
        string path = Write("weights.safetensors", SafetensorsFile("""{"weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4, headerLength: 1L << 40));
        var e = Assert.ThrowsExactly<InvalidDataException>(() => Safetensors.Read(path));
        StringAssert.Contains(e.Message, path);
        StringAssert.Contains(e.Message, "header length 1099511627776");
    }

    [TestMethod]
    public void SafetensorsShapeThatOverflowsIsRefused() =>
        AssertSafetensorsRefused(
            """{"weight":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}""", 4, "overflows 64 bits");

    [TestMethod]
    public void SafetensorsNegativeDimensionIsRefused() =>
        AssertSafetensorsRefused("""{"weight":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4, "negative dimension");

    [TestMethod]
    public void SafetensorsSizeThatDisagreesWithTheShapeIsRefused() =>
        AssertSafetensorsRefused("""{"weight":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}""", 4, "needs 8 bytes but its byte range holds 4");

    [TestMethod]
    public void KerasDatasetLargerThanTheFileIsRefusedBeforeReading()
    {
        // A chunked dataset of 30000 × 30000 floats with no chunk written (tests/fixtures/weights/generate_hostile_h5.py).
        string path = PathOf("hostile_oversized.h5");
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        long rssBefore = ResetPeakResidentBytes();
        var e = Assert.ThrowsExactly<InvalidDataException>(() => RegNetWeights.Load(model, path));
        long peakGrowth = PeakResidentBytes() - rssBefore;
        StringAssert.Contains(e.Message, path);
        StringAssert.Contains(e.Message, "dense/dense/kernel:0");
        StringAssert.Contains(e.Message, "refused before reading it");
        Assert.IsLessThan(300L << 20, peakGrowth, $"peak RSS grew by {peakGrowth >> 20} MB");
    }

    private InvalidDataException AssertRefused(byte[] file, string reason)
    {
        string path = Write("hostile.pth", file);
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => RegNetWeights.Load(model, path));
        AssertNames(e, path, reason);
        return e;
    }

    private void AssertSafetensorsRefused(string header, int dataBytes, string reason)
    {
        string path = Write("weights.safetensors", SafetensorsFile(header, dataBytes));
        var e = Assert.ThrowsExactly<InvalidDataException>(() => Safetensors.Read(path));
        AssertNames(e, path, reason);
    }

    private static void AssertNames(InvalidDataException e, string path, string reason)
    {
        StringAssert.Contains(e.Message, path);
        StringAssert.Contains(e.Message, "'weight'");
        StringAssert.Contains(e.Message, reason);
    }

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Resets the kernel's peak-RSS counter (VmHWM) to the current RSS and returns that.</summary>
    private static long ResetPeakResidentBytes()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("peak RSS is measured through /proc (Linux only).");
        File.WriteAllText("/proc/self/clear_refs", "5");
        return StatusKilobytes("VmRSS") * 1024;
    }

    private static long PeakResidentBytes() => StatusKilobytes("VmHWM") * 1024;

    private static long StatusKilobytes(string field)
    {
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
    }
}
