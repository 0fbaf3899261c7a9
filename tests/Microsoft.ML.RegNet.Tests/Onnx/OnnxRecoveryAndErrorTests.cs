using Microsoft.ML.RegNet.Modules;
using Microsoft.ML.RegNet.Onnx;
using TorchSharp;
using static Microsoft.ML.RegNet.Tests.Onnx.OnnxTestModels;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Onnx;

[TestClass]
public sealed class OnnxRecoveryAndErrorTests
{
    [ClassCleanup]
    public static void Cleanup() => DeleteTempDirs();

    [TestMethod]
    [DataRow("Y002")]
    [DataRow("custom")]
    public void WeightsRecoveredFromOnnxAreBitExact(string name)
    {
        using var model = Create(name);
        model.Padding = PaddingStyle.TensorFlowSame;
        string dir = TempDir();
        string path = Path.Combine(dir, "model.onnx");
        RegNetOnnxExporter.Export(model, path, new OnnxExportOptions { ProbabilitiesOutputName = "probabilities" });

        using var recovered = RegNetOnnxImporter.Load(path);
        Assert.AreEqual(model.Spec, recovered.Spec);
        Assert.AreEqual(model.NumberOfClasses, recovered.NumberOfClasses);
        Assert.AreEqual(PaddingStyle.TensorFlowSame, recovered.Padding);
        Assert.IsFalse(RegNetOnnxImporter.IsBatchNormFolded(path));
        var original = model.state_dict();
        var loaded = recovered.state_dict();
        CollectionAssert.AreEqual(original.Keys.ToArray(), loaded.Keys.ToArray());
        foreach (var (key, tensor) in original)
        {
            Assert.AreEqual(tensor.dtype, loaded[key].dtype, key);
            CollectionAssert.AreEqual(tensor.shape, loaded[key].shape, key);
            CollectionAssert.AreEqual(Bits(tensor), Bits(loaded[key]), $"{key} differs");
        }
        // Into an existing model too.
        using var fresh = new global::Microsoft.ML.RegNet.RegNetModel(model.Spec, model.NumberOfClasses);
        RegNetOnnxImporter.LoadWeights(fresh, path);
        CollectionAssert.AreEqual(Bits(original["s1.b1.conv2.conv.weight"]), Bits(fresh.state_dict()["s1.b1.conv2.conv.weight"]));
        Directory.Delete(dir, true);
    }

    private static byte[] Bits(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.detach().cpu().contiguous().bytes.ToArray();
    }

    [TestMethod]
    public void FoldedExportRecoversAnEquivalentModelWithIdentityBatchNorm()
    {
        using var model = Create("Y002");
        using var recovered = RegNetOnnxImporter.Load(new MemoryStream(RegNetOnnxExporter.ExportToBytes(model, new OnnxExportOptions { FoldBatchNorm = true })));
        var bnWeight = recovered.state_dict()["s2.b1.conv1.bn.weight"];
        Assert.IsTrue(bnWeight.eq(1f).all().item<bool>());
        var input = RandomInput(2, 64, seed: 9);
        recovered.eval();
        Assert.IsLessThan(1e-4f, MaxAbsDiff(Forward(model, input, 2, 64), Forward(recovered, input, 2, 64)));
    }

    [TestMethod]
    public void LoadingWeightsIntoADifferentArchitectureExplainsTheMismatch()
    {
        using var model = Create("custom");
        string path = Path.Combine(TempDir(), "m.onnx");
        RegNetOnnxExporter.Export(model, path);
        using var other = new global::Microsoft.ML.RegNet.RegNetModel(SpecFor("X002"), 10);
        var e = Assert.ThrowsExactly<ArgumentException>(() => RegNetOnnxImporter.LoadWeights(other, path));
        StringAssert.Contains(e.Message, "RegNetOnnxImporter.Load");
    }

    [TestMethod]
    public void TruncatedOnnxGivesAClearError()
    {
        using var model = Create("custom");
        var bytes = RegNetOnnxExporter.ExportToBytes(model);
        string dir = TempDir();
        foreach (int length in new[] { bytes.Length / 2, bytes.Length - 3, 100 })
        {
            string path = Path.Combine(dir, $"cut{length}.onnx");
            File.WriteAllBytes(path, bytes.AsSpan(0, length).ToArray());
            var e = Assert.ThrowsExactly<InvalidDataException>(() => RegNetOnnxImporter.Load(path));
            StringAssert.Contains(e.Message, path);
            StringAssert.Contains(e.Message, "Export the model again");
            var ort = Assert.ThrowsExactly<InvalidDataException>(() => new RegNetOnnxSession(path));
            StringAssert.Contains(ort.Message, "could not load");
        }
    }

    [TestMethod]
    public void AFileThatIsNotOnnxGivesAClearError()
    {
        string dir = TempDir();
        string text = Path.Combine(dir, "notes.onnx");
        File.WriteAllText(text, "This is a text file, not a neural network.\n");
        var e = Assert.ThrowsExactly<InvalidDataException>(() => RegNetOnnxImporter.Load(text));
        StringAssert.Contains(e.Message, "not");
        string empty = Path.Combine(dir, "empty.onnx");
        File.WriteAllBytes(empty, Array.Empty<byte>());
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => RegNetOnnxImporter.Load(empty)).Message, "empty");
        Assert.ThrowsExactly<FileNotFoundException>(() => RegNetOnnxImporter.Load(Path.Combine(dir, "missing.onnx")));
    }

    [TestMethod]
    public void InvalidOptionsAreRejectedBeforeAnyFileIsWritten()
    {
        using var model = Create("custom");
        string dir = TempDir();
        string path = Path.Combine(dir, "m.onnx");
        var bad = new OnnxExportOptions[]
        {
            new() { OpsetVersion = 11 },
            new() { InputName = "" },
            new() { ProbabilitiesOutputName = "logits" },
            new() { IncludeLogits = false },
            new() { ImageSize = 16 },
            new() { CropFromSize = 80 },
            new() { ImageSize = 64, CropFromSize = 32 },
            new() { SqueezeBatchDimension = true },
            new() { BatchSize = 0 },
            new() { Normalization = Microsoft.ML.RegNet.ImageNormalization.ImageNet with { Std = new[] { 1f, 0f, 1f } } },
        };
        foreach (var options in bad)
        {
            var e = Assert.ThrowsExactly<ArgumentException>(() => RegNetOnnxExporter.Export(model, path, options));
            StringAssert.Contains(e.Message, "OnnxExportOptions");
        }
        using var headless = Create("custom", numberOfClasses: 0);
        Assert.ThrowsExactly<ArgumentException>(() => RegNetOnnxExporter.Export(headless, path, new OnnxExportOptions { ProbabilitiesOutputName = "p" }));
        Assert.IsEmpty(Directory.GetFileSystemEntries(dir));
    }

    [TestMethod]
    public void ModelWithoutUsableWeightsIsRejectedAndLeavesNoFile()
    {
        string dir = TempDir();
        string path = Path.Combine(dir, "m.onnx");
        var model = Create("custom");
        using (no_grad()) model.state_dict()["s1.b1.conv1.conv.weight"].fill_(float.NaN);
        var nan = Assert.ThrowsExactly<InvalidOperationException>(() => RegNetOnnxExporter.Export(model, path));
        StringAssert.Contains(nan.Message, "s1.b1.conv1.conv.weight");
        model.Dispose();
        var disposed = Assert.ThrowsExactly<InvalidOperationException>(() => RegNetOnnxExporter.Export(model, path));
        StringAssert.Contains(disposed.Message, "no usable weights");
        Assert.ThrowsExactly<ArgumentNullException>(() => RegNetOnnxExporter.Export(null!, path));
        Assert.IsEmpty(Directory.GetFileSystemEntries(dir));
    }

    [TestMethod]
    public void FailedWriteLeavesNoPartialOrTemporaryFileAndKeepsTheOldOne()
    {
        using var model = Create("custom");
        string dir = TempDir();
        // The target is a folder: the final rename fails after the temporary file was written.
        string folderTarget = Path.Combine(dir, "taken.onnx");
        Directory.CreateDirectory(folderTarget);
        Assert.Throws<IOException>(() => RegNetOnnxExporter.Export(model, folderTarget));
        CollectionAssert.AreEqual(new[] { folderTarget }, Directory.GetFileSystemEntries(dir));
        // An existing good export survives a failed re-export.
        string path = Path.Combine(dir, "good.onnx");
        RegNetOnnxExporter.Export(model, path);
        var before = File.ReadAllBytes(path);
        Assert.ThrowsExactly<ArgumentException>(() => RegNetOnnxExporter.Export(model, path, new OnnxExportOptions { OpsetVersion = 99 }));
        CollectionAssert.AreEqual(before, File.ReadAllBytes(path));
        Assert.ThrowsExactly<DirectoryNotFoundException>(() => RegNetOnnxExporter.Export(model, Path.Combine(dir, "no", "such", "m.onnx")));
        Assert.HasCount(2, Directory.GetFileSystemEntries(dir));
    }
}
