using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Training;

[TestClass]
public sealed class StartingModelTests
{
    [TestMethod]
    public void StartsFromATrainedTransformerAndRejectsAnotherArchitecture()
    {
        var spec = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8);
        using var data = new TinyImageData(perClass: 4, classes: new[] { "red", "blue", "green" });
        var ml = new MLContext(1);
        var view = ml.Data.LoadFromEnumerable(data.Rows);
        IEstimator<ITransformer> Pipeline(RegNetTrainer.Options o) => ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath)))
            .Append(ml.MulticlassClassification.Trainers.RegNet(o));
        RegNetTrainer.Options Options() => new() { Spec = spec, ImageSize = 32, BatchSize = 6, MaxEpochs = 1, Seed = 3, FreezeStages = 3 };

        var first = ((IEnumerable<ITransformer>)Pipeline(Options()).Fit(view)).OfType<RegNetTransformer>().Single();
        var twoClasses = ml.Data.LoadFromEnumerable(data.Rows.Where(r => r.Label != "green"));
        var options = Options();
        options.StartingModel = first;
        var second = ((IEnumerable<ITransformer>)Pipeline(options).Fit(twoClasses)).OfType<RegNetTransformer>().Single();
        Assert.AreEqual(2, second.Model.NumberOfClasses);
        var before = first.Model.state_dict();
        foreach (var (name, tensor) in second.Model.state_dict().Where(kv => kv.Key.StartsWith("s1.")))
            Assert.IsTrue(tensor.eq(before[name]).all().item<bool>(), $"{name} was not copied from the starting model");

        var other = Options();
        other.Spec = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8, seRatio: 0.25);
        other.StartingModel = first;
        Assert.ThrowsExactly<ArgumentException>(() => Pipeline(other).Fit(view));
    }
}
