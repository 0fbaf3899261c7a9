using Google.Protobuf;
using Microsoft.ML.RegNet.Modules;
using Microsoft.ML.RegNet.Onnx;
using Microsoft.ML.RegNet.Onnx.Proto;
using static Microsoft.ML.RegNet.Tests.Onnx.OnnxTestModels;

namespace Microsoft.ML.RegNet.Tests.Onnx;

[TestClass]
public sealed class OnnxMetadataTests
{
    // What format 1 wrote for the "custom" test model (flat fields, rounding as an enum name).
    private const string Format1 =
        """{"Format":1,"Name":"old name","Depth":4,"W0":16,"WA":8,"WM":2,"GroupWidth":8,"BottleneckRatio":1,"SeRatio":0.25,"Rounding":"TorchVision","NumClasses":10,"Padding":"TensorFlowSame","FoldedBatchNorm":false,"NumBatchesTracked":{"stem.bn.num_batches_tracked":17},"PaddingStyle":1}""";

    [TestMethod]
    public void MetadataHoldsTheSpecsOwnJson()
    {
        using var model = Create("custom");
        string json = Metadata(RegNetOnnxExporter.Build(model, null)).Value;
        StringAssert.Contains(json, "\"Format\":2,\"Spec\":" + model.Spec.ToJson());
        StringAssert.DoesNotMatch(json, new System.Text.RegularExpressions.Regex("\"Depth\"|\"PaddingStyle\""));
    }

    [TestMethod]
    public void Format1MetadataStillReads()
    {
        var meta = RegNetOnnxMetadata.FromJson(Format1);
        var spec = meta.ToSpec();
        Assert.AreEqual(RegNetSpec.Create(4, 16, 8, 2, 8, 1, 0.25, WidthRounding.TorchVision), spec);
        Assert.AreEqual("old name", spec.Name);
        Assert.AreEqual(WidthRounding.TorchVision, spec.Rounding);
        Assert.AreEqual(PaddingStyle.TensorFlowSame, meta.PaddingStyle);
        Assert.AreEqual(17L, meta.NumBatchesTracked["stem.bn.num_batches_tracked"]);
    }

    [TestMethod]
    public void AFormat1FileLoadsWithItsWeights()
    {
        using var model = Create("custom");
        var proto = RegNetOnnxExporter.Build(model, null);
        Metadata(proto).Value = Format1.Replace("TorchVision", "Nearest");
        using var loaded = RegNetOnnxImporter.Load(new MemoryStream(proto.ToByteArray()));
        Assert.AreEqual(model.Spec, loaded.Spec);
        Assert.AreEqual(PaddingStyle.TensorFlowSame, loaded.Padding);
        var input = RandomInput(1, 64, seed: 3);
        model.Padding = PaddingStyle.TensorFlowSame;
        CollectionAssert.AreEqual(Forward(model, input, 1, 64), Forward(loaded, input, 1, 64));
    }

    [TestMethod]
    public void ANewerFormatIsRefusedAsNewerNotDamaged()
    {
        using var model = Create("custom");
        var proto = RegNetOnnxExporter.Build(model, null);
        Metadata(proto).Value = """{"Format":3,"Architecture":"something else"}""";
        var e = Assert.ThrowsExactly<InvalidDataException>(() => RegNetOnnxImporter.Load(new MemoryStream(proto.ToByteArray())));
        StringAssert.Contains(e.Message, "newer");
    }

    private static StringStringEntryProto Metadata(ModelProto proto) => proto.MetadataProps.Single(p => p.Key == RegNetOnnxMetadata.Key);
}
