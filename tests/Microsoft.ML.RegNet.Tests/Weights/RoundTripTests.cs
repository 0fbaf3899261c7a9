using System.Buffers.Binary;
using System.Text.Json;
using Microsoft.ML.RegNet.Modules;
using Microsoft.ML.RegNet.Tests.Models;
using Microsoft.ML.RegNet.Weights;
using Microsoft.ML.RegNet.Weights.Layouts;
using static Microsoft.ML.RegNet.Tests.Weights.WeightFixtures;

namespace Microsoft.ML.RegNet.Tests.Weights;

/// <summary>Saving: own format and safetensors round trips are bit-exact; written files follow the safetensors spec in timm layout.</summary>
[TestClass]
public sealed class RoundTripTests
{
    private static void AssertBitExact(RegNetModel expected, RegNetModel actual)
    {
        var a = expected.state_dict();
        var b = actual.state_dict();
        CollectionAssert.AreEqual(a.Keys.ToList(), b.Keys.ToList());
        foreach (var (name, tensor) in a)
        {
            Assert.AreEqual(tensor.dtype, b[name].dtype, name);
            CollectionAssert.AreEqual(tensor.bytes.ToArray(), b[name].bytes.ToArray(), name);
        }
    }

    [TestMethod]
    public void OwnFormatRoundTripIsBitExactAndCarriesArchitectureClassesAndPreprocessing()
    {
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        RegNetWeights.Load(model, PathOf("tiny_y.h5")); // Keras: TF padding and unit-scale preprocessing must travel
        string dir = TempDir();
        string path = Path.Combine(dir, "trained.regnet.safetensors");
        string[] classes = ["cat", "dog", "fox", "owl", "yak"];
        RegNetWeights.Save(model, path, classes, metadata: new Dictionary<string, string> { ["dataset"] = "unit test" });

        var loaded = RegNetWeights.LoadModel(path);
        using var copy = loaded.Model;
        Assert.AreEqual(WeightFormat.RegNetML, loaded.Report.Format);
        Assert.AreEqual(TinyY, copy.Spec);
        Assert.AreEqual("tiny_y", copy.Spec.Name);
        Assert.AreEqual(NumberOfClasses, copy.NumberOfClasses);
        CollectionAssert.AreEqual(classes, loaded.Report.ClassNames.ToArray());
        Assert.AreEqual(PreprocessingSpec.Keras, loaded.Report.Preprocessing);
        Assert.AreEqual(PaddingStyle.TensorFlowSame, copy.Padding);
        Assert.AreEqual("unit test", loaded.Report.Metadata["user.dataset"]);
        Assert.IsTrue(loaded.Report.Tensors.IsComplete, loaded.Report.ToString());
        AssertBitExact(model, copy);
        using var logits = Logits(copy, loaded.Report.Preprocessing);
        TorchVisionEquivalenceTests.AssertClose(Reference("logits_keras_y"), logits, Tolerance, "reloaded Keras weights");
        Directory.Delete(dir, true);
    }

    [TestMethod]
    public void SafetensorsRoundTripIsBitExact()
    {
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        RegNetWeights.Load(model, PathOf("tiny_y_pycls.pyth"));
        string dir = TempDir();
        string path = Path.Combine(dir, "weights.safetensors");
        RegNetWeights.SaveSafetensors(model, path);
        using var copy = new RegNetModel(TinyY, NumberOfClasses);
        var report = RegNetWeights.Load(copy, path);
        Assert.AreEqual(WeightFormat.Safetensors, report.Format);
        Assert.AreEqual("timm", report.Layout);
        AssertBitExact(model, copy);

        // torchvision layout too
        string tv = Path.Combine(dir, "weights_tv.safetensors");
        RegNetWeights.SaveSafetensors(model, tv, layout: StateDictLayout.TorchVision);
        using var copy2 = new RegNetModel(TinyY, NumberOfClasses);
        Assert.AreEqual("torchvision", RegNetWeights.Load(copy2, tv).Layout);
        AssertBitExact(model, copy2);
        Directory.Delete(dir, true);
    }

    /// <summary>The bytes follow the safetensors spec: u64 LE header length, JSON header (dtype, shape, contiguous
    /// data_offsets in order, <c>__metadata__</c> strings), data section exactly covered, header padded to 8 bytes; names in timm layout.
    /// Set REGNET_VERIFY_DIR to keep the file for generate_weight_fixtures.py --verify (PyTorch loads it strictly).</summary>
    [TestMethod]
    public void SaveSafetensorsWritesTimmLayoutReadableByPython()
    {
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        RegNetWeights.Load(model, PathOf("tiny_y_torchvision.pth"));
        string dir = Environment.GetEnvironmentVariable("REGNET_VERIFY_DIR") is { Length: > 0 } keep ? keep : TempDir();
        string path = Path.Combine(dir, "tiny_y_from_csharp.safetensors");
        RegNetWeights.SaveSafetensors(model, path);

        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        Assert.AreEqual(0, headerLength % 8, "header padded to a multiple of 8");
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        long nextOffset = 0;
        var names = new List<string>();
        foreach (var entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__")
            {
                Assert.AreEqual("pt", entry.Value.GetProperty("format").GetString());
                continue;
            }
            names.Add(entry.Name);
            string dtype = entry.Value.GetProperty("dtype").GetString()!;
            long[] shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            long[] offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            Assert.AreEqual(entry.Name.EndsWith("num_batches_tracked") ? "I64" : "F32", dtype, entry.Name);
            Assert.AreEqual(nextOffset, offsets[0], entry.Name);
            Assert.AreEqual(shape.Aggregate(1L, (x, y) => x * y) * (dtype == "I64" ? 8 : 4), offsets[1] - offsets[0], entry.Name);
            nextOffset = offsets[1];
        }
        long dataLength = bytes.Length - 8 - headerLength;
        Assert.AreEqual(nextOffset, dataLength, "the data section is exactly covered");
        var timmNames = StateDictLayout.Timm.TensorNames(TinyY, includeClassifier: true).Values.ToHashSet();
        CollectionAssert.AreEquivalent(timmNames.ToList(), names);
        Assert.Contains("s1.b1.conv1.conv.weight", names);
        Assert.Contains("head.fc.weight", names);

        // The first tensor's bytes are the model's, little-endian float32.
        var stem = model.state_dict()["stem.conv.weight"];
        var first = header.RootElement.GetProperty("stem.conv.weight").GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        CollectionAssert.AreEqual(stem.bytes.ToArray(), bytes[(int)(8 + headerLength + first[0])..(int)(8 + headerLength + first[1])]);
    }

    [TestMethod]
    public void AReinitialisedClassifierDependsOnItsSeedAloneNotOnTheProcessWideGenerator()
    {
        static TorchSharp.torch.Tensor Classifier(int seed, long processSeed)
        {
            TorchSharp.torch.manual_seed(processSeed);
            using var model = new RegNetModel(TinyY, numberOfClasses: 3);
            var report = RegNetWeights.Load(model, PathOf("tiny_y_timm.pth"), new WeightLoadOptions { ClassifierSeed = seed });
            Assert.AreEqual(ClassifierStatus.Reinitialized, report.Classifier);
            return model.Classifier!.weight!.detach().clone();
        }
        using var a = Classifier(seed: 7, processSeed: 1);
        using var b = Classifier(seed: 7, processSeed: 2);
        using var c = Classifier(seed: 8, processSeed: 1);
        Assert.IsTrue(a.eq(b).all().item<bool>(), "the same seed gives the same classifier whatever the process-wide generator holds");
        Assert.IsFalse(a.eq(c).all().item<bool>(), "another seed gives another classifier");
        Assert.AreEqual(0.01, a.std().item<float>(), 0.004, "N(0, 0.01)");
    }

    [TestMethod]
    public void DifferentClassCountReinitialisesTheClassifierForFineTuning()
    {
        using var reference = new RegNetModel(TinyY, NumberOfClasses);
        RegNetWeights.Load(reference, PathOf("tiny_y_timm.pth"));
        using var model = new RegNetModel(TinyY, numberOfClasses: 3);
        var report = RegNetWeights.Load(model, PathOf("tiny_y_timm.pth"));

        Assert.AreEqual(ClassifierStatus.Reinitialized, report.Classifier);
        Assert.IsTrue(report.Tensors.IsComplete, report.ToString());
        Assert.IsTrue(report.Notes.Any(n => n.Contains("5 classes") && n.Contains("re-initialised")), report.ToString());
        CollectionAssert.AreEqual(new long[] { 3, 32 }, model.Classifier!.weight!.shape);
        using var bias = model.Classifier.bias!.abs().max();
        Assert.AreEqual(0f, bias.item<float>(), "re-initialised bias is zero");
        using var pixels = Normalize(Reference("pixels"), report.Preprocessing.Normalization);
        using var a = reference.ForwardPooled(pixels);
        using var b = model.ForwardPooled(pixels);
        TorchVisionEquivalenceTests.AssertClose(a, b, 0, "backbone identical");
    }

    [TestMethod]
    public void HeadlessModelIgnoresTheFilesClassifier()
    {
        using var model = new RegNetModel(TinyY, numberOfClasses: 0);
        var report = RegNetWeights.Load(model, PathOf("tiny_y_torchvision.pth"));
        Assert.AreEqual(ClassifierStatus.NotInModel, report.Classifier);
        Assert.IsTrue(report.Tensors.IsComplete, report.ToString());
    }
}
