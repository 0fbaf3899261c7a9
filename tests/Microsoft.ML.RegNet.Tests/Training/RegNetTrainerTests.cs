using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Training;

[TestClass]
public sealed class RegNetTrainerTests
{
    private static readonly RegNetSpec Tiny = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8, name: "tiny");

    private static RegNetTrainer.Options TinyOptions(int epochs = 2) => new()
    {
        Spec = Tiny, ImageSize = 32, BatchSize = 8, MaxEpochs = epochs, LearningRate = 3e-3, WorkerThreads = 2, Seed = 5,
        Augmentation = AugmentationOptions.Training(0.5) with { LightingStd = 0 }, LogEveryNSteps = 1,
    };

    private static (MLContext, IDataView, IEstimator<ITransformer>) Pipeline(TinyImageData data, RegNetTrainer.Options options, bool rawBytes = false)
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(data.Rows);
        IEstimator<ITransformer> load = rawBytes
            ? ml.Transforms.LoadRawImageBytes("Image", null, nameof(TinyImageData.Row.ImagePath))
            : ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", nameof(TinyImageData.Row.Label))
            .Append(load)
            .Append(ml.MulticlassClassification.Trainers.RegNet(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabelText", "PredictedLabel"));
        return (ml, view, pipeline);
    }

    [TestMethod]
    [DataRow(false), DataRow(true)]
    public void PipelineFitsPredictsAndEvaluates(bool rawBytes)
    {
        using var data = new TinyImageData(perClass: 16);
        var metrics = new List<RegNetTrainingMetrics>();
        var options = TinyOptions(epochs: 3);
        options.MetricsCallback = metrics.Add;
        var (ml, view, pipeline) = Pipeline(data, options, rawBytes);
        var model = pipeline.Fit(view);
        var scored = model.Transform(view);

        var evaluation = ml.MulticlassClassification.Evaluate(scored, topKPredictionCount: 2);
        Assert.IsGreaterThan(0.8, evaluation.MicroAccuracy, $"accuracy {evaluation.MicroAccuracy}");
        Assert.IsTrue(double.IsFinite(evaluation.LogLoss));
        Assert.AreEqual(2, evaluation.ConfusionMatrix.NumberOfClasses);

        var score = scored.Schema["Score"];
        Assert.AreEqual(2, ((VectorDataViewType)score.Type).Size);
        VBuffer<ReadOnlyMemory<char>> slots = default;
        score.GetSlotNames(ref slots);
        CollectionAssert.AreEqual(new[] { "red", "blue" }, slots.DenseValues().Select(s => s.ToString()).ToArray());
        var predictions = ml.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: false).ToList();
        Assert.HasCount(data.Rows.Count, predictions);
        foreach (var p in predictions) Assert.AreEqual(1f, p.Score.Sum(), 1e-4f);
        Assert.IsGreaterThan(0.8, predictions.Zip(data.Rows).Count(z => z.First.PredictedLabelText == z.Second.Label) / (double)predictions.Count);

        Assert.IsTrue(metrics.Any(m => m.Phase == MetricsPhase.TrainEpoch && m.Epoch == 2));
        Assert.IsTrue(metrics.All(m => m.LearningRate > 0 && m.ImagesPerSecond > 0));
    }

    private sealed class Prediction
    {
        public float[] Score { get; set; } = Array.Empty<float>();
        public string PredictedLabelText { get; set; } = "";
    }

    [TestMethod]
    public void LabelThatIsNotAKeySaysToAddMapValueToKey()
    {
        using var data = new TinyImageData(perClass: 2);
        var ml = new MLContext(1);
        var view = ml.Transforms.LoadImages("Image", null, "ImagePath").Fit(ml.Data.LoadFromEnumerable(data.Rows)).Transform(ml.Data.LoadFromEnumerable(data.Rows));
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.RegNet(TinyOptions()).Fit(view));
        StringAssert.Contains(e.Message, "MapValueToKey");
    }

    [TestMethod]
    public void MissingOrWrongImageColumnAndSingleClassAreRejected()
    {
        using var data = new TinyImageData(perClass: 2, classes: new[] { "only" });
        var ml = new MLContext(1);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(data.Rows)).Transform(ml.Data.LoadFromEnumerable(data.Rows));
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.RegNet(TinyOptions()).Fit(keyed));
        StringAssert.Contains(e.Message, "at least 2");

        using var two = new TinyImageData(perClass: 2);
        var rows = ml.Data.LoadFromEnumerable(two.Rows);
        var labelled = ml.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
        var missing = Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.RegNet(TinyOptions()).Fit(labelled));
        StringAssert.Contains(missing.Message, "no image column 'Image'");
        StringAssert.Contains(missing.Message, "LoadImages");
        var path = ml.Transforms.CopyColumns("Image", nameof(TinyImageData.Row.ImagePath)).Fit(labelled).Transform(labelled);
        var wrong = Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.RegNet(TinyOptions()).Fit(path));
        StringAssert.Contains(wrong.Message, "'Image'");
        StringAssert.Contains(wrong.Message, "LoadImages");
    }

    [TestMethod]
    public void RunFolderHoldsConfigMetricsCurvesAndCheckpoints()
    {
        using var data = new TinyImageData(perClass: 8);
        string workspace = Directory.CreateTempSubdirectory("regnet-ws-").FullName;
        var options = TinyOptions(epochs: 2);
        options.WorkspacePath = workspace;
        var (_, view, pipeline) = Pipeline(data, options);
        pipeline.Fit(view);
        var run = Directory.GetDirectories(Path.Combine(workspace, "runs")).Single();
        StringAssert.Matches(Path.GetFileName(run), new System.Text.RegularExpressions.Regex(@"^\d{8}-\d{6}-tiny$"));
        foreach (var file in new[] { "config.json", "metrics.jsonl", "metrics.csv", "curves.png", "checkpoints/latest.ckpt" })
            Assert.IsTrue(File.Exists(Path.Combine(run, file)), file);
        Assert.IsNotEmpty(Directory.GetFiles(Path.Combine(run, "tensorboard"), "events.out.tfevents*", SearchOption.AllDirectories));
        Assert.IsGreaterThan(3, File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Length);
        Directory.Delete(workspace, true);
    }

    [TestMethod]
    public void ResumeAfterCancellationReproducesTheUninterruptedWeights()
    {
        using var data = new TinyImageData(perClass: 12);
        string workspace = Directory.CreateTempSubdirectory("regnet-resume-").FullName;

        var straight = TinyOptions(epochs: 2);
        var (_, view, pipeline) = Pipeline(data, straight);
        var reference = ((IEnumerable<ITransformer>)pipeline.Fit(view)).OfType<RegNetTransformer>().Single();

        using var cancel = new CancellationTokenSource();
        var interrupted = TinyOptions(epochs: 2);
        interrupted.WorkspacePath = workspace;
        interrupted.MetricsCallback = m => { if (m.Phase == MetricsPhase.TrainSteps && m.Step == 4) cancel.Cancel(); };
        interrupted.CancellationToken = cancel.Token;
        (_, view, pipeline) = Pipeline(data, interrupted);
        pipeline.Fit(view);
        string run = Directory.GetDirectories(Path.Combine(workspace, "runs")).Single();

        var resumed = TinyOptions(epochs: 2);
        resumed.ResumeFrom = run;
        (_, view, pipeline) = Pipeline(data, resumed);
        var continued = ((IEnumerable<ITransformer>)pipeline.Fit(view)).OfType<RegNetTransformer>().Single();

        var a = reference.Model.state_dict();
        var b = continued.Model.state_dict();
        foreach (var (name, tensor) in a)
            Assert.IsTrue(tensor.eq(b[name]).all().item<bool>(), $"{name} differs after resume");
        Directory.Delete(workspace, true);
    }

    [TestMethod]
    public void CancellationStopsAndLeavesUsableWeights()
    {
        using var data = new TinyImageData(perClass: 8);
        using var cancel = new CancellationTokenSource();
        var options = TinyOptions(epochs: 5);
        options.MetricsCallback = m => { if (m.Step == 2) cancel.Cancel(); };
        options.CancellationToken = cancel.Token;
        var steps = new List<long>();
        options.MetricsCallback += m => steps.Add(m.Step);
        var (ml, view, pipeline) = Pipeline(data, options);
        var model = pipeline.Fit(view);
        Assert.IsLessThanOrEqualTo(2L, steps.Max());
        var scored = ml.Data.CreateEnumerable<Prediction>(model.Transform(view), false).ToList();
        Assert.IsTrue(scored.All(p => p.Score.All(float.IsFinite)));
    }

    [TestMethod]
    public void EarlyStoppingStops()
    {
        using var data = new TinyImageData(perClass: 8);
        var epochs = new HashSet<int>();
        var options = TinyOptions(epochs: 20);
        options.LearningRate = 1e-9; // nothing improves
        options.ValidationFraction = 0.25;
        options.EarlyStopping = new EarlyStoppingOptions(EarlyStoppingMetric.ValidationLoss, Patience: 2, MinDelta: 0.01);
        options.MetricsCallback = m => epochs.Add(m.Epoch);
        var (_, view, pipeline) = Pipeline(data, options);
        pipeline.Fit(view);
        Assert.IsLessThanOrEqualTo(3, epochs.Max());
    }

    [TestMethod]
    public void OverfitsThirtyTwoImages()
    {
        using var data = new TinyImageData(perClass: 16, classes: new[] { "red", "blue" });
        var last = new List<RegNetTrainingMetrics>();
        var options = TinyOptions(epochs: 12);
        options.Augmentation = AugmentationOptions.Evaluation(1.0) with { FlipProbability = 0 };
        options.Augmentation = options.Augmentation with { Train = true, AreaFactor = 1, MinAspectRatio = 1, MaxAspectRatio = 1, LightingStd = 0 };
        options.MetricsCallback = m => { if (m.Phase == MetricsPhase.TrainEpoch) last.Add(m); };
        var (_, view, pipeline) = Pipeline(data, options);
        pipeline.Fit(view);
        Assert.IsLessThan(0.05, last[^1].Loss, $"final training loss {last[^1].Loss}");
    }

    [TestMethod]
    public void NoNativeMemoryGrowthAcrossTrainingSteps()
    {
        using var data = new TinyImageData(perClass: 16);
        var options = TinyOptions(epochs: 25); // 4 steps an epoch → 100 steps
        var live = new List<long>();
        options.MetricsCallback = m => { if (m.Phase == MetricsPhase.TrainSteps) live.Add(TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount); };
        var (_, view, pipeline) = Pipeline(data, options);
        pipeline.Fit(view);
        Assert.IsGreaterThanOrEqualTo(90, live.Count);
        Assert.IsLessThanOrEqualTo(live[10] + 5, live[^1], $"live tensors grew from {live[10]} to {live[^1]}");
    }
}
