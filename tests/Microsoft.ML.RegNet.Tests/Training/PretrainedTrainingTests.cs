using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.ML.RegNet.Weights.Layouts;
using PureHDF;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>
/// <c>Trainers.RegNet("X002", pretrained: …)</c> with a file placed in <c>$REGNET_WEIGHTS_DIR</c>: the weights are the
/// file's, and training uses the file's preprocessing (Keras: 1/255 and TensorFlow "same" padding; timm: ImageNet mean/std).
/// The files are written here from a randomly initialised X002 (a Keras-layout .h5 with PureHDF, names and tensor layouts
/// as keras.applications writes them; timm-layout safetensors).
/// </summary>
[TestClass]
public sealed class PretrainedTrainingTests
{
    private const int Classes = 2;

    [TestMethod]
    public void KerasFileInWeightsDirectoryTrainsWithUnitScaleAndTensorFlowPadding()
    {
        using var data = new TinyImageData(perClass: 4, size: 40);
        using var source = new RegNetModel(RegNetSpec.FromName("X002"), Classes, generator: new Generator(7));
        string dir = WeightFixturesDir();
        string file = Path.Combine(dir, "regnetx002.h5");
        WriteKerasH5(source, file);
        string sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file)));
        // The published hash would refuse this file; the user states the hash of their own file instead.
        var pretrained = new PretrainedOptions { CacheDirectory = Path.Combine(dir, "cache"), ExpectedSha256 = new Dictionary<string, string> { ["regnetx002.h5"] = sha } };

        var (model, config) = FitFrom(data, dir, PretrainedSource.Keras, pretrained);
        using (model)
        {
            Assert.AreEqual(ImageNormalization.UnitScale, model.Preprocessing.Normalization);
            Assert.AreEqual(PaddingStyle.TensorFlowSame, model.Model.Padding);
            AssertNormalization(config, scale: 1f / 255f, mean: 0f, std: 1f);
            // Stem and stages were frozen: they are the file's weights, bit for bit.
            AssertTrunkEquals(source, model.Model);
        }
        Directory.Delete(dir, true);
    }

    [TestMethod]
    public void TimmFileInWeightsDirectoryTrainsWithImageNetMeanAndStd()
    {
        using var data = new TinyImageData(perClass: 4, size: 40);
        using var source = new RegNetModel(RegNetSpec.FromName("X002"), Classes, generator: new Generator(8));
        string dir = WeightFixturesDir();
        RegNetWeights.SaveSafetensors(source, Path.Combine(dir, "regnetx_002.pycls_in1k.safetensors"));
        var pretrained = new PretrainedOptions { CacheDirectory = Path.Combine(dir, "cache"), AllowUnverified = true };

        var (model, config) = FitFrom(data, dir, PretrainedSource.Timm, pretrained);
        using (model)
        {
            Assert.AreEqual(ImageNormalization.ImageNet, model.Preprocessing.Normalization);
            Assert.AreEqual(PaddingStyle.Symmetric, model.Model.Padding);
            AssertNormalization(config, scale: 1f / 255f, mean: 0.485f, std: 0.229f);
            AssertTrunkEquals(source, model.Model);
        }
        Directory.Delete(dir, true);
    }

    [TestMethod]
    public void NormalizationSetByTheUserWinsOverTheWeights()
    {
        var options = new RegNetTrainer.Options { Pretrained = PretrainedSource.Keras };
        Assert.AreEqual(ImageNormalization.UnitScale, RegNetTrainer.NormalizationOf(options));
        options.Normalization = ImageNormalization.Uniform(0.5f, 0.5f);
        Assert.AreEqual(ImageNormalization.Uniform(0.5f, 0.5f), RegNetTrainer.NormalizationOf(options));
        Assert.AreEqual(ImageNormalization.ImageNet, RegNetTrainer.NormalizationOf(new RegNetTrainer.Options { Pretrained = PretrainedSource.TorchVisionV2, Architecture = "Y008" }));
        Assert.AreEqual(ImageNormalization.ImageNet, RegNetTrainer.NormalizationOf(new RegNetTrainer.Options()));
    }

    [TestMethod]
    public void OfflineWithoutTheFileSaysWhereToPutIt()
    {
        using var data = new TinyImageData(perClass: 2, size: 40);
        string dir = WeightFixturesDir();
        var e = Assert.ThrowsExactly<FileNotFoundException>(() =>
            FitFrom(data, dir, PretrainedSource.Keras, new PretrainedOptions { CacheDirectory = Path.Combine(dir, "cache") }).Model.Dispose());
        StringAssert.Contains(e.Message, "regnetx002.h5");
        StringAssert.Contains(e.Message, dir);
        StringAssert.Contains(e.Message, PretrainedCatalog.KerasBaseUrl);
        Directory.Delete(dir, true);
    }

    [TestMethod]
    public void PretrainedCannotBeCombinedWithOtherStartingWeights()
    {
        var ml = new MLContext(1);
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.RegNet(new RegNetTrainer.Options
        {
            Pretrained = PretrainedSource.Keras, Spec = TinyImageData.TinySpec,
        }));
        StringAssert.Contains(e.Message, "Spec");
        Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.RegNet(new RegNetTrainer.Options
        {
            Pretrained = PretrainedSource.TorchVisionV1, Architecture = "X002", // torchvision publishes no X002
        }));
        var trainer = ml.MulticlassClassification.Trainers.RegNet("RegNetY-800MF", pretrained: PretrainedSource.TorchVisionV1);
        Assert.AreEqual(WidthRounding.TorchVision, trainer.Spec.Rounding, "torchvision's regnet_y_800mf is rounded its own way");
    }

    private static string WeightFixturesDir() => Directory.CreateTempSubdirectory("regnet-pretrained-").FullName;

    // Fit through the flat catalog overload with the file found through $REGNET_WEIGHTS_DIR, offline.
    private static (RegNetTransformer Model, JsonObject Config) FitFrom(TinyImageData data, string dir, PretrainedSource source, PretrainedOptions pretrained)
    {
        string? oldDir = Environment.GetEnvironmentVariable(PretrainedWeights.LocalDirectoryVariable);
        string? oldOffline = Environment.GetEnvironmentVariable(PretrainedWeights.OfflineVariable);
        Environment.SetEnvironmentVariable(PretrainedWeights.LocalDirectoryVariable, dir);
        Environment.SetEnvironmentVariable(PretrainedWeights.OfflineVariable, "1");
        try
        {
            var options = new RegNetTrainer.Options
            {
                Architecture = "X002", Pretrained = source, PretrainedOptions = pretrained, ImageSize = 32, BatchSize = 4, MaxEpochs = 1,
                FreezeStages = 4, Augmentation = AugmentationOptions.Evaluation(), WorkspacePath = Path.Combine(dir, "ws"), WorkerThreads = 1, Seed = 3,
            };
            var model = data.Fit(options);
            string run = Directory.GetDirectories(Path.Combine(dir, "ws", "runs")).Single();
            return (model, (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(run, "config.json")))!);
        }
        finally
        {
            Environment.SetEnvironmentVariable(PretrainedWeights.LocalDirectoryVariable, oldDir);
            Environment.SetEnvironmentVariable(PretrainedWeights.OfflineVariable, oldOffline);
        }
    }

    private static void AssertNormalization(JsonObject config, float scale, float mean, float std)
    {
        var n = config["normalization"]!;
        Assert.AreEqual(scale, n["Scale"]!.GetValue<float>(), 1e-9f);
        Assert.AreEqual(mean, n["Mean"]![0]!.GetValue<float>(), 1e-6f);
        Assert.AreEqual(std, n["Std"]![0]!.GetValue<float>(), 1e-6f);
    }

    private static void AssertTrunkEquals(RegNetModel expected, RegNetModel actual)
    {
        var trained = actual.state_dict();
        int compared = 0;
        foreach (var (name, tensor) in expected.state_dict())
        {
            if (name.StartsWith("head.", StringComparison.Ordinal) || name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue;
            Assert.IsTrue(tensor.equal(trained[name]).all().item<bool>(), $"{name} differs from the file's");
            compared++;
        }
        Assert.IsGreaterThan(100, compared);
    }

    // keras.applications' layer names and tensor layouts: conv kernels HWIO, dense kernels (in, out), BN gamma/beta/moving_*.
    private static void WriteKerasH5(RegNetModel model, string path)
    {
        var state = model.state_dict();
        var layers = KerasLayout.Layers(model.Spec, KerasLayout.ModelPrefix(model.Spec), includeTop: true);
        var file = new H5File();
        file.Attributes["layer_names"] = layers.Select(l => l.KerasName).ToArray();
        foreach (var layer in layers)
        {
            var arrays = new H5Group();
            var names = new List<string>();
            foreach (string weight in KerasLayout.WeightsOf[layer.Kind])
            {
                var t = state[$"{layer.Canonical}.{KerasLayout.TensorNames[weight]}"].detach();
                var keras = weight == "kernel" ? (t.dim() == 4 ? t.permute(2, 3, 1, 0) : t.t()) : t;
                keras = keras.contiguous();
                arrays[weight + ":0"] = new H5Dataset(keras.data<float>().ToArray(), fileDims: keras.shape.Select(d => (ulong)d).ToArray());
                names.Add($"{layer.KerasName}/{weight}:0");
            }
            // Keras nests each layer's arrays one level further, under the layer's name again.
            var group = new H5Group { [layer.KerasName] = arrays };
            group.Attributes["weight_names"] = names.ToArray();
            file[layer.KerasName] = group;
        }
        // Keras writes names as fixed-length strings (np.asarray of bytes).
        file.Write(path, new H5WriteOptions(DefaultStringLength: 64));
    }
}
