using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Data.MLNet;

/// <summary>
/// The ML.NET part of the evaluation transform (<see cref="EvaluationCrop"/>): decoding (for byte columns) and ML.NET's
/// resize, as estimators. The same estimators run in-process before scoring and validation and are saved in the model,
/// so both see the same pixels; the centred window and the normalisation follow in the pipeline or in the ONNX graph.
/// </summary>
internal static class EvaluationPreprocessing
{
    /// <summary>Column the resized image is written to, beside the user's columns.</summary>
    public const string ResizedColumnName = "RegNetResizedImage";

    /// <summary>The columns the estimators add (a saved chain drops them again).</summary>
    public static string[] IntermediateColumns(bool imageIsBytes) => imageIsBytes ? [ResizedColumnName, RegNetImageBytesDecoder.EncodedColumnName, RegNetImageBytesDecoder.DecodedColumnName] : [ResizedColumnName];

    public static IEstimator<ITransformer> Estimator(MLContext mlContext, EvaluationCrop crop, string imageColumn, bool imageIsBytes)
    {
        if (!imageIsBytes) return crop.CreateResizeEstimator(mlContext, ResizedColumnName, imageColumn);
        return RegNetImageBytesDecoder.Create(mlContext, imageColumn)
            .Append(crop.CreateResizeEstimator(mlContext, ResizedColumnName, RegNetImageBytesDecoder.DecodedColumnName));
    }

    /// <summary>Fits the (data-independent) estimators to <paramref name="schema"/>.</summary>
    public static ITransformer Fit(EvaluationCrop crop, DataViewSchema schema, string imageColumn, bool imageIsBytes)
    {
        var ml = new MLContext();
        return Estimator(ml, crop, imageColumn, imageIsBytes).Fit(new EmptyDataView(schema));
    }

    /// <summary><paramref name="data"/> with <see cref="ResizedColumnName"/> added.</summary>
    public static IDataView Apply(IDataView data, EvaluationCrop crop, string imageColumn, bool imageIsBytes) =>
        Fit(crop, data.Schema, imageColumn, imageIsBytes).Transform(data);

    internal sealed class EmptyDataView(DataViewSchema schema) : IDataView
    {
        public bool CanShuffle => false;
        public DataViewSchema Schema { get; } = schema;
        public long? GetRowCount() => 0;
        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(Schema);
        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => [new Cursor(Schema)];

        private sealed class Cursor(DataViewSchema schema) : DataViewRowCursor
        {
            public override DataViewSchema Schema { get; } = schema;
            public override long Position => -1;
            public override long Batch => 0;
            public override bool MoveNext() => false;
            public override bool IsColumnActive(DataViewSchema.Column column) => false;
            public override ValueGetter<DataViewRowId> GetIdGetter() => throw new InvalidOperationException("Empty view.");
            public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => throw new InvalidOperationException("Empty view.");
        }
    }
}
