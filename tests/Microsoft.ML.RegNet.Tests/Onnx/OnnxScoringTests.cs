using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Onnx;
using Microsoft.ML.Transforms.Image;
using static Microsoft.ML.RegNet.Tests.Onnx.OnnxTestModels;

namespace Microsoft.ML.RegNet.Tests.Onnx;

[TestClass]
public sealed class OnnxScoringTests
{
    [ClassCleanup]
    public static void Cleanup() => DeleteTempDirs();

    private static readonly string[] ClassNames = { "cat", "dog", "fox", "owl" };
    private static readonly PreprocessingSpec Preprocessing = new(ImageNormalization.ImageNet, ImageSize: 64, CropFraction: 0.875);

    public sealed class ImageInput
    {
        [ImageType(64, 64)]
        public MLImage? Image { get; set; }

        [KeyType(4)]
        public uint Label { get; set; }
    }

    public sealed class Prediction
    {
        public float[] Score { get; set; } = Array.Empty<float>();
        public uint PredictedLabel { get; set; }
    }

    // Images of several sizes and aspect ratios (the saved preprocessing must cope with all of them).
    private static List<ImageInput> Images()
    {
        var sizes = new (int W, int H)[] { (64, 64), (90, 40), (70, 120), (200, 150), (33, 33) };
        var r = new Random(3);
        return sizes.Select((s, i) =>
        {
            var pixels = new byte[s.W * s.H * 4];
            r.NextBytes(pixels);
            for (int p = 0; p < s.W * s.H; p++)
            {
                pixels[p * 4 + i % 3] = (byte)(pixels[p * 4 + i % 3] / 4 + 150 * (p % s.W) / s.W); // some structure per image
                pixels[p * 4 + 3] = 255;
            }
            return new ImageInput { Image = MLImage.CreateFromPixels(s.W, s.H, MLPixelFormat.Bgra32, pixels), Label = (uint)(i % 4) + 1 };
        }).ToList();
    }

    private static RegNetModel Model() => Create("custom", numberOfClasses: ClassNames.Length, seed: 4);

    [TestMethod]
    public void ScoreIsAKnownSizeProbabilityVectorAndPredictedLabelAKeyWithClassNames()
    {
        var ml = new MLContext(seed: 1);
        using var model = Model();
        var chain = RegNetOnnxScoring.CreateTransformer(ml, model, Preprocessing, ClassNames);
        var data = ml.Data.LoadFromEnumerable(Images());
        var scored = chain.Transform(data);

        var scoreType = scored.Schema["Score"].Type as VectorDataViewType;
        Assert.IsNotNull(scoreType);
        Assert.AreEqual(NumberDataViewType.Single, scoreType.ItemType);
        Assert.HasCount(1, scoreType.Dimensions);
        Assert.AreEqual(ClassNames.Length, scoreType.Size);
        var keyType = scored.Schema["PredictedLabel"].Type as KeyDataViewType;
        Assert.IsNotNull(keyType);
        Assert.AreEqual((ulong)ClassNames.Length, keyType.Count);
        var keyValues = default(VBuffer<ReadOnlyMemory<char>>);
        scored.Schema["PredictedLabel"].GetKeyValues(ref keyValues);
        CollectionAssert.AreEqual(ClassNames, keyValues.DenseValues().Select(v => v.ToString()).ToArray());
        Assert.IsFalse(scored.Schema.Any(c => c.Name.StartsWith("RegNet", StringComparison.Ordinal)), "helper columns are dropped");

        var scores = scored.GetColumn<float[]>("Score").ToArray();
        var labels = scored.GetColumn<uint>("PredictedLabel").ToArray();
        Assert.HasCount(5, scores);
        for (int i = 0; i < scores.Length; i++)
        {
            Assert.AreEqual(1.0, scores[i].Sum(), 1e-5);
            Assert.AreEqual(Array.IndexOf(scores[i], scores[i].Max()) + 1, (int)labels[i], "keys are 1-based");
        }
        Assert.IsGreaterThan(1e-3f, scores.Select(s => s[0]).Max() - scores.Select(s => s[0]).Min(), "scores should vary between images");

        var metrics = ml.MulticlassClassification.Evaluate(scored, "Label", "Score", "PredictedLabel");
        Assert.IsTrue(double.IsFinite(metrics.LogLoss));
    }

    [TestMethod]
    public void ScoresMatchTheInMemoryModelAfterTheEvaluationTransform()
    {
        var ml = new MLContext(seed: 1);
        using var model = Model();
        var chain = RegNetOnnxScoring.CreateTransformer(ml, model, Preprocessing, ClassNames, foldBatchNorm: false);
        var images = Images();
        var scores = chain.Transform(ml.Data.LoadFromEnumerable(images)).GetColumn<float[]>("Score").ToArray();

        // The in-memory model on the evaluation transform's pixels, as RegNetTransformer scores in-process.
        var crop = new EvaluationCrop(Preprocessing);
        int size = Preprocessing.ImageSize;
        for (int i = 0; i < images.Count; i++)
        {
            var x = new float[3 * size * size];
            PixelNormalizer.WriteChw(crop.Apply(images[i].Image!), Preprocessing.Normalization, x);
            var logits = Forward(model, x, 1, size);
            var e = logits.Select(v => Math.Exp(v - logits.Max())).ToArray();
            var expected = e.Select(v => (float)(v / e.Sum())).ToArray();
            Assert.IsLessThan(1e-5f, MaxAbsDiff(expected, scores[i]), $"image {i}");
        }
    }

    [TestMethod]
    public void SaveLoadRoundTripGivesTheSameScoresAndPredictionEngineWorks()
    {
        var ml = new MLContext(seed: 1);
        using var model = Model();
        var chain = RegNetOnnxScoring.CreateTransformer(ml, model, Preprocessing, ClassNames);
        var data = ml.Data.LoadFromEnumerable(Images());
        var before = chain.Transform(data);
        string path = Path.Combine(TempDir(), "model.zip");
        ml.Model.Save(chain, data.Schema, path);

        var fresh = new MLContext(seed: 2);
        var loaded = fresh.Model.Load(path, out var inputSchema);
        Assert.IsInstanceOfType<TransformerChain<ITransformer>>(loaded);
        var after = loaded.Transform(fresh.Data.LoadFromEnumerable(Images()));
        AssertSameScores(before, after);

        using var engine = fresh.Model.CreatePredictionEngine<ImageInput, Prediction>(loaded);
        var images = Images();
        var expectedScores = before.GetColumn<float[]>("Score").ToArray();
        var expectedLabels = before.GetColumn<uint>("PredictedLabel").ToArray();
        for (int i = 0; i < images.Count; i++)
        {
            var p = engine.Predict(images[i]);
            Assert.AreEqual(expectedLabels[i], p.PredictedLabel);
            Assert.IsLessThan(1e-5f, MaxAbsDiff(expectedScores[i], p.Score));
        }
    }

    [TestMethod]
    public void AWrapperThatDelegatesSaveToTheChainLoadsBackAsTheChain()
    {
        var ml = new MLContext(seed: 1);
        using var model = Model();
        var chain = RegNetOnnxScoring.CreateTransformer(ml, model, Preprocessing, ClassNames);
        var data = ml.Data.LoadFromEnumerable(Images());
        var wrapper = new DelegatingTransformer(chain);
        var expected = wrapper.Transform(data);
        string dir = TempDir();

        // The wrapper on its own: Load gives back the inner chain's type, not the wrapper.
        ml.Model.Save(wrapper, data.Schema, Path.Combine(dir, "wrapper.zip"));
        var loaded = ml.Model.Load(Path.Combine(dir, "wrapper.zip"), out _);
        Assert.IsInstanceOfType<TransformerChain<ITransformer>>(loaded);
        AssertSameScores(expected, loaded.Transform(data));

        // Inside a user pipeline: the wrapper's slot loads as a nested TransformerChain.
        var copy = ml.Transforms.CopyColumns("ImageCopy", "Image").Fit(data);
        var pipeline = new TransformerChain<ITransformer>(copy, wrapper);
        ml.Model.Save(pipeline, data.Schema, Path.Combine(dir, "pipeline.zip"));
        var loadedPipeline = (TransformerChain<ITransformer>)ml.Model.Load(Path.Combine(dir, "pipeline.zip"), out _);
        var parts = loadedPipeline.ToArray();
        Assert.HasCount(2, parts);
        Assert.IsInstanceOfType<TransformerChain<ITransformer>>(parts[1]);
        AssertSameScores(expected, loadedPipeline.Transform(data));
    }

    [TestMethod]
    public void BadArgumentsAreRejected()
    {
        var ml = new MLContext();
        using var model = Model();
        Assert.ThrowsExactly<ArgumentException>(() => RegNetOnnxScoring.CreateTransformer(ml, model, Preprocessing, new[] { "a", "b" }));
        Assert.ThrowsExactly<ArgumentException>(() => RegNetOnnxScoring.CreateTransformer(ml, model, Preprocessing, new[] { "a", "a", "b", "c" }));
        Assert.ThrowsExactly<ArgumentException>(() => RegNetOnnxScoring.CreateTransformer(ml, model, Preprocessing, ClassNames, scoreColumnName: "X", predictedLabelColumnName: "X"));
        Assert.ThrowsExactly<ArgumentException>(() => RegNetOnnxScoring.CreateTransformer(ml, model, Preprocessing with { ImageSize = 8 }, ClassNames));
        using var headless = Create("custom", numberOfClasses: 0);
        Assert.ThrowsExactly<ArgumentException>(() => RegNetOnnxScoring.CreateTransformer(ml, headless, Preprocessing, ClassNames));
        var disposed = Model();
        disposed.Dispose();
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(() => RegNetOnnxScoring.CreateTransformer(ml, disposed, Preprocessing, ClassNames)).Message, "no usable weights");
    }

    private static void AssertSameScores(IDataView expected, IDataView actual)
    {
        var e = expected.GetColumn<float[]>("Score").ToArray();
        var a = actual.GetColumn<float[]>("Score").ToArray();
        Assert.HasCount(e.Length, a);
        for (int i = 0; i < e.Length; i++) Assert.IsLessThan(1e-5f, MaxAbsDiff(e[i], a[i]), $"row {i}");
        CollectionAssert.AreEqual(expected.GetColumn<uint>("PredictedLabel").ToArray(), actual.GetColumn<uint>("PredictedLabel").ToArray());
    }

    /// <summary>Stands in for a third-party transformer (e.g. RegNetTransformer) whose Save delegates to a chain of ML.NET transformers.</summary>
    private sealed class DelegatingTransformer(ITransformer inner) : ITransformer
    {
        public bool IsRowToRowMapper => inner.IsRowToRowMapper;
        public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => inner.GetOutputSchema(inputSchema);
        public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => inner.GetRowToRowMapper(inputSchema);
        public IDataView Transform(IDataView input) => inner.Transform(input);
        void ICanSaveModel.Save(ModelSaveContext ctx) => ((ICanSaveModel)inner).Save(ctx);
    }
}
