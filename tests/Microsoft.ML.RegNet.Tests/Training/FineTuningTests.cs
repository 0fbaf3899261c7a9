using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Training;

[TestClass]
public sealed class FineTuningTests
{
    [TestMethod]
    public void StartsFromAWeightsFileWithAnotherClassCountAndFrozenStages()
    {
        var spec = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8);
        using var data = new TinyImageData(perClass: 6, classes: new[] { "red", "blue", "green" });
        string weights = Path.Combine(data.Folder, "pretrained.regnet.safetensors");
        using (var pretrained = new Microsoft.ML.RegNet.RegNetModel(spec, numberOfClasses: 7))
            Microsoft.ML.RegNet.RegNetWeights.Save(pretrained, weights);
        using var source = new Microsoft.ML.RegNet.RegNetModel(spec, numberOfClasses: 7);
        Microsoft.ML.RegNet.RegNetWeights.Load(source, weights);

        var ml = new MLContext(1);
        var options = new RegNetTrainer.Options
        {
            Spec = spec, ImageSize = 32, BatchSize = 6, MaxEpochs = 1, Seed = 3, StartingWeightsPath = weights, FreezeStages = 2,
        };
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath)))
            .Append(ml.MulticlassClassification.Trainers.RegNet(options))
            .Fit(ml.Data.LoadFromEnumerable(data.Rows));
        var trained = ((IEnumerable<ITransformer>)model).OfType<RegNetTransformer>().Single();
        Assert.AreEqual(3, trained.Model.NumberOfClasses);
        var before = source.state_dict();
        foreach (var (name, tensor) in trained.Model.state_dict())
        {
            if (name.StartsWith("head.")) continue;
            bool frozen = name.StartsWith("stem.") || name.StartsWith("s1.") || name.StartsWith("s2.");
            bool same = tensor.eq(before[name]).all().item<bool>();
            if (frozen) Assert.IsTrue(same, $"{name} is frozen but changed");
        }
        Assert.IsFalse(trained.Model.state_dict()["s3.b1.conv1.conv.weight"].eq(before["s3.b1.conv1.conv.weight"]).all().item<bool>(), "unfrozen stage did not train");
    }
}
