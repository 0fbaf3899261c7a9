using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Tests.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Onnx;

/// <summary>
/// <c>mlContext.Transforms.RegNetFeatures(...)</c>: pooled features that feed an ML.NET trainer, in a pipeline that saves
/// and loads like every other. The features are checked against the trained network run in-process by TorchSharp: its
/// classifier applied to them gives the transformer's probabilities.
/// </summary>
[TestClass]
public sealed class RegNetFeaturesTests
{
    [TestMethod]
    public void FeaturesFeedSdcaAndThePipelineSavesAndLoads()
    {
        using var data = new TinyImageData(perClass: 8);
        using var network = data.Fit(Training.RegNetTransformerPersistenceTests.SaveableOptions());
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(data.Rows);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", nameof(TinyImageData.Row.Label))
            .Append(ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath)))
            .Append(ml.Transforms.RegNetFeatures(network, "Features", "Image"))
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy("Label", "Features"));
        var model = pipeline.Fit(view);
        var scored = model.Transform(view);
        Assert.AreEqual(TinyImageData.TinySpec.FeatureWidth, ((VectorDataViewType)scored.Schema["Features"].Type).Size);
        Assert.IsGreaterThanOrEqualTo(0.9, ml.MulticlassClassification.Evaluate(scored).MicroAccuracy, "red and blue images separate on the features");

        // The features are the network's pooled features: its own classifier on them gives its in-process probabilities.
        var features = scored.GetColumn<float[]>("Features").ToList();
        var probabilities = network.Transform(ml.Transforms.Conversion.MapValueToKey("Label", nameof(TinyImageData.Row.Label))
            .Append(ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath))).Fit(view).Transform(view)).GetColumn<float[]>("Score").ToList();
        var fc = network.Model.Classifier!;
        for (int i = 0; i < features.Count; i++)
        {
            using var scope = NewDisposeScope();
            var p = nn.functional.softmax(fc.call(tensor(features[i]).unsqueeze(0)), 1).squeeze(0).data<float>().ToArray();
            for (int c = 0; c < p.Length; c++) Assert.AreEqual(probabilities[i][c], p[c], 1e-4, $"row {i} class {c}");
        }

        string path = Path.Combine(data.Folder, "features.zip");
        ml.Model.SaveAtomically(model, view.Schema, path);
        var loaded = new MLContext(seed: 2).Model.Load(path, out _);
        var before = scored.GetColumn<float[]>("Score").ToList();
        var after = loaded.Transform(view).GetColumn<float[]>("Score").ToList();
        for (int i = 0; i < before.Count; i++)
            for (int c = 0; c < before[i].Length; c++) Assert.AreEqual(before[i][c], after[i][c], 1e-6, $"row {i} class {c}");
    }

    [TestMethod]
    public void PretrainedByNameFromTheWeightsFolder()
    {
        using var data = new TinyImageData(perClass: 2);
        using var source = new RegNetModel(RegNetSpec.FromName("X002"), 1000, generator: new Generator(3));
        string dir = Directory.CreateTempSubdirectory("regnet-features-").FullName;
        RegNetWeights.SaveSafetensors(source, Path.Combine(dir, "regnetx_002.pycls_in1k.safetensors"));
        var options = new PretrainedOptions { LocalDirectory = dir, CacheDirectory = dir, Offline = true, AllowUnverified = true };
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(data.Rows);
        var features = ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath))
            .Append(ml.Transforms.RegNetFeatures("Features", "Image", "X002", PretrainedSource.Timm, imageSize: 32, pretrainedOptions: options))
            .Fit(view).Transform(view).GetColumn<float[]>("Features").ToList();
        Assert.HasCount(4, features);
        Assert.IsTrue(features.All(f => f.Length == 368 && f.All(float.IsFinite)));

        Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.RegNetFeatures("Features", "Image", "X002", pretrained: null));
        var missing = Assert.ThrowsExactly<FileNotFoundException>(() => ml.Transforms.RegNetFeatures("Features", "Image", "X002",
            PretrainedSource.Keras, pretrainedOptions: options));
        StringAssert.Contains(missing.Message, "regnetx002.h5");
        Directory.Delete(dir, true);
    }
}
