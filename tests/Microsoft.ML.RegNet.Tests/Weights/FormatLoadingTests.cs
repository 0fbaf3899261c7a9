using Microsoft.ML.RegNet.Modules;
using Microsoft.ML.RegNet.Tests.Models;
using Microsoft.ML.RegNet.Weights;
using static Microsoft.ML.RegNet.Tests.Weights.WeightFixtures;

namespace Microsoft.ML.RegNet.Tests.Weights;

/// <summary>Every ecosystem's file gives the reference logits of the Python fixtures, with the preprocessing it reports.</summary>
[TestClass]
public sealed class FormatLoadingTests
{
    [TestMethod]
    [DataRow("tiny_y_torchvision.pth", WeightFormat.PyTorch, "torchvision")]
    [DataRow("tiny_y_timm.pth", WeightFormat.PyTorch, "timm")]
    [DataRow("tiny_y_pycls.pyth", WeightFormat.PyTorch, "pycls")]
    [DataRow("tiny_y_timm.safetensors", WeightFormat.Safetensors, "timm")]
    public void PyTorchLayoutsGiveReferenceLogits(string file, WeightFormat format, string layout)
    {
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        var report = RegNetWeights.Load(model, PathOf(file));

        Assert.AreEqual(format, report.Format);
        Assert.AreEqual(layout, report.Layout);
        Assert.IsTrue(report.Tensors.IsComplete, report.ToString());
        Assert.AreEqual(ClassifierStatus.Loaded, report.Classifier);
        Assert.AreEqual(PaddingStyle.Symmetric, model.Padding);
        Assert.AreEqual(ImageNormalization.ImageNet, report.Preprocessing.Normalization, "RGB ImageNet mean/std");
        using var logits = Logits(model, report.Preprocessing);
        TorchVisionEquivalenceTests.AssertClose(Reference("logits_imagenet_y"), logits, Tolerance, file);
    }

    [TestMethod]
    public void PyclsCheckpointIsReadFromModelStateAndConvertedToRgb()
    {
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        var report = RegNetWeights.Load(model, PathOf("tiny_y_pycls.pyth"));
        Assert.IsTrue(report.ConvertedBgrToRgb, report.ToString());
        Assert.IsTrue(report.Notes.Any(n => n.Contains("model_state")), report.ToString());
        Assert.AreEqual(ChannelOrder.Rgb, report.Preprocessing.Normalization.Order);
    }

    [TestMethod]
    public void PyclsCheckpointKeptAsPublishedExpectsBgr()
    {
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        var report = RegNetWeights.Load(model, PathOf("tiny_y_pycls.pyth"), new WeightLoadOptions { ConvertBgrToRgb = false });
        Assert.IsFalse(report.ConvertedBgrToRgb);
        Assert.AreEqual(ImageNormalization.ImageNetBgr, report.Preprocessing.Normalization);
        using var logits = Logits(model, report.Preprocessing); // feeds BGR
        TorchVisionEquivalenceTests.AssertClose(Reference("logits_imagenet_y"), logits, Tolerance, "pycls BGR");
    }

    [TestMethod]
    [DataRow("tiny_y.h5", "y", "keras (by name)")]
    [DataRow("tiny_x_full.h5", "x", "keras (by name)")]
    [DataRow("tiny_x_renamed.h5", "x", "keras (by order)")]
    public void KerasFilesGiveReferenceLogitsWithTensorFlowPaddingAndUnitScale(string file, string family, string layout)
    {
        using var model = new RegNetModel(family == "y" ? TinyY : TinyX, NumberOfClasses);
        var report = RegNetWeights.Load(model, PathOf(file));

        Assert.AreEqual(WeightFormat.KerasHdf5, report.Format);
        Assert.AreEqual(layout, report.Layout);
        Assert.IsTrue(report.Tensors.IsComplete, report.ToString());
        Assert.AreEqual(ClassifierStatus.Loaded, report.Classifier);
        Assert.AreEqual(PaddingStyle.TensorFlowSame, model.Padding, "set automatically for Keras weights");
        Assert.AreEqual(PreprocessingSpec.Keras, report.Preprocessing);
        using var logits = Logits(model, report.Preprocessing);
        TorchVisionEquivalenceTests.AssertClose(Reference($"logits_keras_{family}"), logits, Tolerance, file);
    }

    [TestMethod]
    public void KerasNoTopFileLoadsTheBackboneAndReinitialisesTheClassifier()
    {
        using var full = new RegNetModel(TinyY, NumberOfClasses);
        RegNetWeights.Load(full, PathOf("tiny_y.h5"));
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        var report = RegNetWeights.Load(model, PathOf("tiny_y_notop.h5"));

        Assert.AreEqual(ClassifierStatus.Reinitialized, report.Classifier);
        Assert.IsTrue(report.Tensors.IsComplete, report.ToString());
        Assert.IsTrue(report.Notes.Any(n => n.Contains("_notop")), report.ToString());
        using var pixels = Normalize(Reference("pixels"), report.Preprocessing.Normalization);
        using var a = full.ForwardPooled(pixels);
        using var b = model.ForwardPooled(pixels);
        TorchVisionEquivalenceTests.AssertClose(a, b, 0, "pooled features");
    }

    [TestMethod]
    public void KerasNoTopIntoHeadlessModelIsComplete()
    {
        using var model = new RegNetModel(TinyY, numberOfClasses: 0);
        var report = RegNetWeights.Load(model, PathOf("tiny_y_notop.h5"));
        Assert.AreEqual(ClassifierStatus.NotInModel, report.Classifier);
        Assert.IsTrue(report.Tensors.IsComplete, report.ToString());
    }

    [TestMethod]
    public void NotopWithoutReinitialisationIsAStrictError()
    {
        using var model = new RegNetModel(TinyY, NumberOfClasses);
        var e = Assert.ThrowsExactly<WeightMismatchException>(() =>
            RegNetWeights.Load(model, PathOf("tiny_y_notop.h5"), new WeightLoadOptions { ReinitializeClassifierOnMismatch = false }));
        StringAssert.Contains(e.Message, "head.fc.weight");
    }

    [TestMethod]
    [DataRow("tiny_y.h5", WeightFormat.KerasHdf5)]
    [DataRow("tiny_y_torchvision.pth", WeightFormat.PyTorch)]
    [DataRow("tiny_y_pycls.pyth", WeightFormat.PyTorch)]
    [DataRow("tiny_y_timm.safetensors", WeightFormat.Safetensors)]
    public void FormatIsDetectedFromContent(string file, WeightFormat expected)
    {
        Assert.AreEqual(expected, WeightFormatDetector.Detect(PathOf(file)));
        // The content decides: the same bytes under a neutral extension are still recognised.
        string dir = TempDir();
        string copy = Path.Combine(dir, "weights.data");
        File.Copy(PathOf(file), copy);
        Assert.AreEqual(expected, WeightFormatDetector.Detect(copy));
        Directory.Delete(dir, true);
    }
}
