using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.RegNet.Modules;
using Microsoft.ML.RegNet.Onnx;
using static Microsoft.ML.RegNet.Tests.Onnx.OnnxTestModels;

namespace Microsoft.ML.RegNet.Tests.Onnx;

[TestClass]
public sealed class OnnxExportTests
{
    [ClassCleanup]
    public static void Cleanup() => DeleteTempDirs();

    private const int Size = 64;
    private const float Tolerance = 1e-4f;

    [TestMethod]
    [DataRow("X002")]
    [DataRow("Y002")]
    [DataRow("custom")]
    public void ExportedGraphMatchesTorchAtTwoBatchSizes(string name)
    {
        using var model = Create(name);
        var onnx = RegNetOnnxExporter.ExportToBytes(model);
        using var session = new RegNetOnnxSession(onnx, intraOpThreads: 2);
        foreach (int n in new[] { 1, 3 })
        {
            var input = RandomInput(n, Size, seed: n);
            var expected = Forward(model, input, n, Size);
            var actual = session.Score(input, n, Size, Size);
            Assert.IsGreaterThan(0.1f, Spread(expected), "logits should not be constant, or the comparison proves nothing");
            Assert.IsLessThan(Tolerance, MaxAbsDiff(expected, actual), $"{name}, batch {n}");
        }
    }

    [TestMethod]
    public void ACudaDeviceWithoutTheCudaProviderIsAClearErrorOrTheCpuWithTheReasonWhenFallingBack()
    {
        // These machines have ONNX Runtime's CPU package: asking for CUDA must not silently score on the CPU.
        using var model = Create("X002");
        var onnx = RegNetOnnxExporter.ExportToBytes(model);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => new RegNetOnnxSession(onnx, 2, gpuDeviceId: 0));
        StringAssert.Contains(e.Message, "Microsoft.ML.OnnxRuntime.Gpu");
        StringAssert.Contains(e.Message, "fallbackToCpu");

        using var fallen = new RegNetOnnxSession(onnx, 2, gpuDeviceId: 0, fallbackToCpu: true);
        using var cpu = new RegNetOnnxSession(onnx, 2);
        Assert.AreEqual("CPU", fallen.ExecutionProvider);
        Assert.IsNotNull(fallen.FallbackReason);
        StringAssert.Contains(fallen.FallbackReason, "CUDA device 0");
        Assert.IsNull(cpu.FallbackReason);
        var input = RandomInput(2, Size, seed: 4);
        CollectionAssert.AreEqual(cpu.Score(input, 2, Size, Size), fallen.Score(input, 2, Size, Size), "the fallback session scores as the CPU one");
    }

    [TestMethod]
    [DataRow("X002")]
    [DataRow("Y002")]
    public void FoldedBatchNormChangesOutputsByLessThanTolerance(string name)
    {
        using var model = Create(name);
        var input = RandomInput(2, Size, seed: 7);
        var expected = Forward(model, input, 2, Size);
        using var folded = new RegNetOnnxSession(RegNetOnnxExporter.ExportToBytes(model, new OnnxExportOptions { FoldBatchNorm = true }), 2);
        Assert.IsLessThan(Tolerance, MaxAbsDiff(expected, folded.Score(input, 2, Size, Size)));
    }

    [TestMethod]
    public void FoldedGraphHasNoBatchNormalizationNodes()
    {
        using var model = Create("custom");
        var folded = RegNetOnnxExporter.Build(model, new OnnxExportOptions { FoldBatchNorm = true });
        var unfolded = RegNetOnnxExporter.Build(model, null);
        Assert.IsFalse(folded.Graph.Node.Any(n => n.OpType == "BatchNormalization"));
        Assert.AreEqual(model.AllConvNorms().Count(), unfolded.Graph.Node.Count(n => n.OpType == "BatchNormalization"));
        Assert.AreEqual(17, unfolded.OpsetImport.Single().Version);
        Assert.AreEqual("N", unfolded.Graph.Input[0].Type.TensorType.Shape.Dim[0].DimParam);
    }

    [TestMethod]
    [DataRow(64)]
    [DataRow(null)]
    public void TensorFlowSamePaddingExportMatches(int? fixedSize)
    {
        using var model = Create("Y002");
        model.Padding = PaddingStyle.TensorFlowSame;
        var onnx = RegNetOnnxExporter.ExportToBytes(model, new OnnxExportOptions { ImageSize = fixedSize });
        using var session = new RegNetOnnxSession(onnx, 2);
        foreach (int size in fixedSize is { } s ? new[] { s } : new[] { 64, 50 })
        {
            var input = RandomInput(2, size, seed: size);
            var expected = Forward(model, input, 2, size);
            Assert.IsLessThan(Tolerance, MaxAbsDiff(expected, session.Score(input, 2, size, size)), $"size {size}");
        }
        // And it really differs from the symmetric export (otherwise the test could not fail).
        model.Padding = PaddingStyle.Symmetric;
        var input64 = RandomInput(1, 64, seed: 3);
        var symmetric = Forward(model, input64, 1, 64);
        Assert.IsGreaterThan(1e-3f, MaxAbsDiff(symmetric, session.Score(input64, 1, 64, 64)));
    }

    [TestMethod]
    public void BakedInPreprocessingTakesRawPixelsAndCrops()
    {
        using var model = Create("custom", numberOfClasses: 5);
        var norm = ImageNormalization.ImageNetBgr;
        const int from = 72, size = 64;
        var options = new OnnxExportOptions
        {
            Normalization = norm, ImageSize = size, CropFromSize = from,
            ProbabilitiesOutputName = "probabilities", PredictedIndexOutputName = "label",
        };
        var onnx = RegNetOnnxExporter.ExportToBytes(model, options);

        var r = new Random(5);
        var raw = new float[3 * from * from];
        for (int i = 0; i < raw.Length; i++) raw[i] = r.Next(256);
        // Reference: crop the centre, normalise per colour (R, G, B), then reorder to B, G, R.
        int offset = (from - size) / 2;
        var x = new float[3 * size * size];
        for (int c = 0; c < 3; c++)
        {
            int src = 2 - c; // BGR network channel c comes from colour plane 2 - c
            for (int y = 0; y < size; y++)
                for (int xx = 0; xx < size; xx++)
                    x[(c * size + y) * size + xx] = (raw[(src * from + y + offset) * from + xx + offset] * norm.Scale - norm.Mean[src]) / norm.Std[src];
        }
        var logits = Forward(model, x, 1, size);

        using var session = new InferenceSession(onnx);
        using var input = OrtValue.CreateTensorValueFromMemory(raw, new long[] { 1, 3, from, from });
        using var outputs = session.Run(new RunOptions(), new[] { "input" }, new[] { input }, new[] { "logits", "probabilities", "label" });
        var onnxLogits = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        var probs = outputs[1].GetTensorDataAsSpan<float>().ToArray();
        long label = outputs[2].GetTensorDataAsSpan<long>()[0];
        Assert.IsLessThan(Tolerance, MaxAbsDiff(logits, onnxLogits));
        var softmax = logits.Select(v => Math.Exp(v - logits.Max())).ToArray();
        var expectedProbs = softmax.Select(v => (float)(v / softmax.Sum())).ToArray();
        Assert.IsLessThan(1e-5f, MaxAbsDiff(expectedProbs, probs));
        Assert.AreEqual(Array.IndexOf(logits, logits.Max()), (int)label);
    }

    [TestMethod]
    [DataRow(13)]
    [DataRow(21)]
    public void OnnxRuntimeLoadsTheFileWithAllGraphOptimisations(int opset)
    {
        using var model = Create("X002");
        string dir = TempDir();
        string path = Path.Combine(dir, "x002.onnx");
        RegNetOnnxExporter.Export(model, path, new OnnxExportOptions { OpsetVersion = opset });
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, OptimizedModelFilePath = Path.Combine(dir, "optimized.onnx") };
        using var session = new InferenceSession(path, options);
        Assert.AreEqual("input", session.InputMetadata.Keys.Single());
        Assert.AreEqual(-1, session.InputMetadata["input"].Dimensions[0], "dynamic batch");
        Assert.AreEqual("logits", session.OutputMetadata.Keys.Single());
        Assert.IsTrue(File.Exists(Path.Combine(dir, "optimized.onnx")));
        CollectionAssert.AreEquivalent(new[] { "optimized.onnx", "x002.onnx" }, Directory.GetFiles(dir).Select(Path.GetFileName).ToArray());
        var input = RandomInput(2, Size, seed: opset);
        using var scorer = new RegNetOnnxSession(path, 2);
        Assert.IsLessThan(Tolerance, MaxAbsDiff(Forward(model, input, 2, Size), scorer.Score(input, 2, Size, Size)));
    }

    [TestMethod]
    public void HeadlessModelExportsPooledFeatures()
    {
        using var model = Create("custom", numberOfClasses: 0);
        var input = RandomInput(2, Size, seed: 11);
        using var session = new RegNetOnnxSession(RegNetOnnxExporter.ExportToBytes(model, new OnnxExportOptions { OutputName = "features" }), 2);
        var actual = session.Score(input, 2, Size, Size);
        Assert.HasCount(2 * model.Spec.FeatureWidth, actual);
        Assert.IsLessThan(Tolerance, MaxAbsDiff(Forward(model, input, 2, Size), actual));
    }
}
