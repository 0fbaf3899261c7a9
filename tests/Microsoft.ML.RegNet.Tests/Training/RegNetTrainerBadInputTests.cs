using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Training;

[TestClass]
public sealed class RegNetTrainerBadInputTests
{
    private static RegNetTrainer.Options Options() => new()
    {
        Spec = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8), ImageSize = 32, BatchSize = 4, MaxEpochs = 1, Seed = 1, WorkerThreads = 1,
    };

    private static IDataView Keyed(MLContext ml, IEnumerable<TinyImageData.Row> rows, ITransformer? mapping = null)
    {
        var view = ml.Data.LoadFromEnumerable(rows);
        mapping ??= ml.Transforms.Conversion.MapValueToKey("Label").Fit(view);
        return ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath)).Fit(view).Transform(mapping.Transform(view));
    }

    [TestMethod]
    public void EmptyDataIsRejected()
    {
        var ml = new MLContext(1);
        using var data = new TinyImageData(perClass: 1);
        var mapping = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(data.Rows));
        var empty = Keyed(ml, Array.Empty<TinyImageData.Row>(), mapping);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => ml.MulticlassClassification.Trainers.RegNet(Options()).Fit(empty));
        StringAssert.Contains(e.Message, "empty");
    }

    [TestMethod]
    public void ValidationSetWithOtherClassesIsRejected()
    {
        var ml = new MLContext(1);
        using var data = new TinyImageData(perClass: 2);
        using var other = new TinyImageData(perClass: 2, classes: new[] { "red", "blue", "green" });
        var options = Options();
        options.ValidationSet = Keyed(ml, other.Rows);
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.RegNet(options).Fit(Keyed(ml, data.Rows)));
        StringAssert.Contains(e.Message, "same MapValueToKey");
    }

    [TestMethod]
    public void CorruptImageInTheMiddleFailsNamingTheRowOrIsSkippedAndCounted()
    {
        var ml = new MLContext(1);
        using var data = new TinyImageData(perClass: 4);
        File.WriteAllBytes(data.Rows[5].ImagePath, new byte[] { 1, 2, 3, 4 }); // not an image
        var raw = ml.Data.LoadFromEnumerable(data.Rows);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        var bytes = ml.Transforms.LoadRawImageBytes("Image", null, nameof(TinyImageData.Row.ImagePath)).Fit(keyed).Transform(keyed);

        var e = Assert.Throws<Exception>(() => ml.MulticlassClassification.Trainers.RegNet(Options()).Fit(bytes));
        StringAssert.Contains(e.ToString(), "row 5");

        var skipping = Options();
        skipping.BadImagePolicy = Microsoft.ML.RegNet.BadImagePolicy.Skip;
        var logs = new List<string>();
        ml.Log += (_, args) => logs.Add(args.Message);
        ml.MulticlassClassification.Trainers.RegNet(skipping).Fit(bytes);
        Assert.IsTrue(logs.Any(l => l.Contains("could not be decoded")), "the skipped image is reported");
    }

    [TestMethod]
    public void DivergingLossStopsWithAClearMessage()
    {
        var ml = new MLContext(1);
        using var data = new TinyImageData(perClass: 8);
        var options = Options();
        options.MaxEpochs = 5;
        options.LearningRate = 1e12;
        options.WeightDecay = 0;
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => ml.MulticlassClassification.Trainers.RegNet(options).Fit(Keyed(ml, data.Rows)));
        StringAssert.Contains(e.Message, "Lower the learning rate");
    }
}
