using Microsoft.ML.RegNet.Weights;
using Microsoft.ML.RegNet.Weights.Formats;
using static Microsoft.ML.RegNet.Tests.Weights.WeightFixtures;

namespace Microsoft.ML.RegNet.Tests.Weights;

/// <summary>Truncated, foreign, mismatching and malicious files fail with clear exceptions; nothing crashes or runs.</summary>
[TestClass]
public sealed class BadInputTests
{
    [TestMethod]
    [DataRow("malicious_system.pth", "system")]
    [DataRow("malicious_eval.pt", "builtin__.eval")] // protocol 2 names builtins as __builtin__
    public void MaliciousPickleIsRejectedAndNothingRuns(string file, string global)
    {
        if (File.Exists(MaliciousMarker)) File.Delete(MaliciousMarker);
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        var e = Assert.ThrowsExactly<UnsafePickleException>(() => RegNetWeights.Load(model, PathOf(file)));
        StringAssert.Contains(e.Message, global);
        StringAssert.Contains(e.Message, "not allowed");
        StringAssert.Contains(e.Message, "Nothing was executed");
        Assert.IsFalse(File.Exists(MaliciousMarker), "the pickle's payload ran");
    }

    [TestMethod]
    public void GlobalsOutsideTheAllowListAreRejectedBeforeTheyAreCalled()
    {
        // PROTO 2, GLOBAL 'subprocess\nPopen', ... STOP: refused at the GLOBAL opcode.
        byte[] pickle = [0x80, 0x02, .. "csubprocess\nPopen\n"u8, (byte)')', (byte)'R', (byte)'.'];
        string dir = TempDir();
        string path = Path.Combine(dir, "evil.pt");
        File.WriteAllBytes(path, pickle);
        var e = Assert.ThrowsExactly<UnsafePickleException>(() => TorchPickle.Read(path));
        StringAssert.Contains(e.Message, "subprocess.Popen");
        Directory.Delete(dir, true);
    }

    [TestMethod]
    [DataRow("tiny_y_torchvision.pth")]
    [DataRow("tiny_y_pycls.pyth")]
    [DataRow("tiny_y_timm.safetensors")]
    [DataRow("tiny_y.h5")]
    public void TruncatedFilesFailWithInvalidData(string file)
    {
        string dir = TempDir();
        byte[] bytes = File.ReadAllBytes(PathOf(file));
        foreach (double fraction in new[] { 0.5, 0.97 })
        {
            string path = Path.Combine(dir, $"{fraction}_{file}");
            File.WriteAllBytes(path, bytes[..(int)(bytes.Length * fraction)]);
            using var model = new RegNetModel(TinyY, NumberOfClasses);
            var e = Assert.ThrowsExactly<InvalidDataException>(() => RegNetWeights.Load(model, path), $"{file} cut at {fraction}");
            StringAssert.Contains(e.Message, path);
        }
        Directory.Delete(dir, true);
    }

    [TestMethod]
    public void WrongArchitectureNamesTheFirstMismatchingTensorAndBothShapes()
    {
        using var model = new RegNetModel(RegNetSpec.Create(5, 16, 8, 2, 8, seRatio: 0.25, name: "wider"), NumberOfClasses);
        var e = Assert.ThrowsExactly<WeightMismatchException>(() => RegNetWeights.Load(model, PathOf("tiny_y_timm.pth")));
        StringAssert.Contains(e.Message, "First mismatching tensor: 's1.b1.conv1.conv.weight' has shape [8, 32, 1, 1] in the file");
        StringAssert.Contains(e.Message, "[16, 32, 1, 1] in the model");
        Assert.IsLessThan(3000, e.Message.Length, "the message stays readable");
        Assert.IsNotEmpty(e.Report.Mismatched);
        var first = e.Report.Mismatched[0];
        StringAssert.Contains(e.Message, $"[{string.Join(", ", first.FileShape)}] in the file");
        StringAssert.Contains(e.Message, $"[{string.Join(", ", first.ModelShape)}] in the model");
    }

    [TestMethod]
    public void KerasFileForAnotherArchitectureIsReportedTensorByTensor()
    {
        using var wider = new RegNetModel(RegNetSpec.Create(5, 16, 8, 2, 8, seRatio: 0.25, name: "wider"), NumberOfClasses);
        var e = Assert.ThrowsExactly<WeightMismatchException>(() => RegNetWeights.Load(wider, PathOf("tiny_y.h5")));
        StringAssert.Contains(e.Message, "First mismatching tensor: 's1.b1.conv1.conv.weight' has shape [8, 32, 1, 1] in the file");

        using var x = new RegNetModel(TinyX, NumberOfClasses); // the Y file's SE layers have no place in an X model
        var se = Assert.ThrowsExactly<WeightMismatchException>(() => RegNetWeights.Load(x, PathOf("tiny_y.h5")));
        Assert.IsTrue(se.Report.Unexpected.Any(n => n.Contains("squeeze_and_excite_squeeze")), se.Message);
        Assert.IsEmpty(se.Report.Missing, se.Message);
    }

    [TestMethod]
    public void StrictLoadFailureLeavesTheModelUntouched()
    {
        using var model = new RegNetModel(TinyX, NumberOfClasses); // X spec: the Y file has SE tensors the model lacks
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var e = Assert.ThrowsExactly<WeightMismatchException>(() => RegNetWeights.Load(model, PathOf("tiny_y_torchvision.pth")));
        Assert.IsTrue(e.Report.Unexpected.Any(n => n.Contains("f.se.fc1")), e.Message);
        foreach (var (name, tensor) in model.state_dict())
            CollectionAssert.AreEqual(before[name].bytes.ToArray(), tensor.bytes.ToArray(), name);
        foreach (var t in before.Values) t.Dispose();
    }

    [TestMethod]
    public void NonStrictLoadReportsWhatItSkipped()
    {
        using var model = new RegNetModel(TinyX, NumberOfClasses);
        var report = RegNetWeights.Load(model, PathOf("tiny_y_torchvision.pth"), new WeightLoadOptions { Strict = false });
        Assert.IsFalse(report.Tensors.IsComplete);
        Assert.IsTrue(report.Tensors.Unexpected.Any(n => n.EndsWith("f.se.fc1.weight")), report.ToString());
        Assert.IsNotEmpty(report.Tensors.Loaded);
    }

    [TestMethod]
    public void UnknownFormatIsReported()
    {
        string dir = TempDir();
        string path = Path.Combine(dir, "weights.pth");
        File.WriteAllText(path, "this is not a weight file");
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => RegNetWeights.Load(model, path));
        StringAssert.Contains(e.Message, "unknown weight format");
        string other = Path.Combine(dir, "weights.xyz");
        File.WriteAllBytes(other, new byte[] { 1, 2, 3 });
        Assert.ThrowsExactly<InvalidDataException>(() => RegNetWeights.Load(model, other));
        Directory.Delete(dir, true);
    }

    [TestMethod]
    public void ExtensionThatContradictsTheContentIsReported()
    {
        string dir = TempDir();
        string path = Path.Combine(dir, "weights.h5");
        File.Copy(PathOf("tiny_y_torchvision.pth"), path);
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => RegNetWeights.Load(model, path));
        StringAssert.Contains(e.Message, "KerasHdf5");
        StringAssert.Contains(e.Message, "PyTorch");
        Directory.Delete(dir, true);
    }

    [TestMethod]
    public void MissingFileAndNonRegNetStateDict()
    {
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        Assert.ThrowsExactly<FileNotFoundException>(() => RegNetWeights.Load(model, Path.Combine(TempDir(), "none.pth")));
        // reference.safetensors holds tensors, but no RegNet layout.
        var e = Assert.ThrowsExactly<InvalidDataException>(() => RegNetWeights.Load(model, PathOf("reference.safetensors")));
        StringAssert.Contains(e.Message, "no known RegNet layout");
    }

    [TestMethod]
    public void LoadModelNeedsAFileThatDescribesItsArchitecture()
    {
        Assert.ThrowsExactly<NotSupportedException>(() => RegNetWeights.LoadModel(PathOf("tiny_y_timm.pth")));
        Assert.ThrowsExactly<NotSupportedException>(() => RegNetWeights.LoadModel(PathOf("tiny_y.h5"))); // custom, not a zoo prefix
    }
    [TestMethod]
    public void StrictStateDictLoaderFailureThrowsTheMismatchTypeAndLeavesTheModelUntouched()
    {
        using var model = new RegNetModel(TinyX, NumberOfClasses);
        using var source = new RegNetModel(TinyY, NumberOfClasses); // Y: SE tensors the X model lacks
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var e = Assert.ThrowsExactly<WeightMismatchException>(() => StateDictLoader.Load(model, source.state_dict(), StateDictLayout.Timm));
        Assert.IsNotEmpty(e.Report.Unexpected);
        foreach (var (name, tensor) in model.state_dict())
            CollectionAssert.AreEqual(before[name].bytes.ToArray(), tensor.bytes.ToArray(), name);
        foreach (var t in before.Values) t.Dispose();
    }
}
