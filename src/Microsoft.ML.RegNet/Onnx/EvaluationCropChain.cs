using Google.Protobuf;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Onnx.Proto;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.RegNet.Onnx;

/// <summary>
/// The evaluation transform (<see cref="EvaluationCrop"/>) as a chain of ML.NET's own estimators, so that a pipeline
/// containing it saves and loads: ResizeImages (the transform's resize step) → ExtractPixels → a one-node ONNX graph
/// that slices the centred window → ConvertToImage. ML.NET has no crop transform; the ONNX Slice is the public route.
/// </summary>
internal static class EvaluationCropChain
{
    private const string Resized = "RegNetCropResized", Pixels = "RegNetCropPixels", Window = "RegNetCropWindow";

    public static IEstimator<ITransformer> Create(MLContext mlContext, EvaluationCrop crop, string outputColumnName, string inputColumnName)
    {
        int r = crop.ResizeShorterSide, s = crop.Size;
        return crop.CreateResizeEstimator(mlContext, Resized, inputColumnName)
            .Append(mlContext.Transforms.ExtractPixels(Pixels, Resized))
            .Append(mlContext.Transforms.ApplyOnnxModel(Window, Pixels, new MemoryStream(SliceModel(r, s, crop.WindowOffset))))
            .Append(mlContext.Transforms.ConvertToImage(s, s, outputColumnName, Window))
            .Append(mlContext.Transforms.DropColumns(Resized, Pixels, Window));
    }

    // Pixels [3, r, r] (ExtractPixels' planes) → [3, s, s] at (offset, offset).
    private static byte[] SliceModel(int r, int s, int offset)
    {
        var graph = new GraphProto { Name = "regnet_evaluation_window" };
        graph.Input.Add(OnnxProtos.ValueInfo(Pixels, TensorProto.Types.DataType.Float,
            OnnxProtos.Dim(3, null), OnnxProtos.Dim(r, null), OnnxProtos.Dim(r, null)));
        graph.Output.Add(OnnxProtos.ValueInfo(Window, TensorProto.Types.DataType.Float,
            OnnxProtos.Dim(3, null), OnnxProtos.Dim(s, null), OnnxProtos.Dim(s, null)));
        foreach (var (name, values) in new[] { ("starts", new long[] { offset, offset }), ("ends", new long[] { offset + s, offset + s }), ("axes", new long[] { 1, 2 }) })
        {
            var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
            tensor.Dims.Add(values.Length);
            tensor.Int64Data.Add(values);
            graph.Initializer.Add(tensor);
        }
        var node = new NodeProto { OpType = "Slice", Name = "window" };
        node.Input.Add(new[] { Pixels, "starts", "ends", "axes" });
        node.Output.Add(Window);
        graph.Node.Add(node);
        var model = new ModelProto { IrVersion = 7, ProducerName = RegNetOnnxExporter.ProducerName, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return model.ToByteArray();
    }
}
