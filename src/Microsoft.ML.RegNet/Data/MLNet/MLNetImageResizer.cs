using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.RegNet.Data.MLNet;

/// <summary>
/// Runs ML.NET's fitted <c>ResizeImages</c> transformer on single images through its public row mapper, so in-process
/// preprocessing executes exactly the resampler a saved model runs. One instance per thread (it holds a current row).
/// </summary>
internal sealed class MLNetImageResizer
{
    private const string InputName = "Image";
    private const string OutputName = "Resized";
    private readonly SingleImageRow _row;
    private readonly ValueGetter<MLImage> _getter;

    public MLNetImageResizer(int side)
    {
        var ml = new MLContext();
        var schema = new DataViewSchema.Builder();
        schema.AddColumn(InputName, new ImageDataViewType());
        var empty = new EvaluationPreprocessing.EmptyDataView(schema.ToSchema());
        var transformer = ml.Transforms.ResizeImages(OutputName, side, side, InputName,
            ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center).Fit(empty);
        var mapper = ((ITransformer)transformer).GetRowToRowMapper(empty.Schema);
        _row = new SingleImageRow(empty.Schema);
        var output = mapper.GetRow(_row, mapper.OutputSchema.Where(c => c.Name == OutputName));
        _getter = output.GetGetter<MLImage>(output.Schema[OutputName]);
    }

    /// <summary>Resizes; returns <paramref name="image"/> itself when it already has the target size (as ML.NET does).</summary>
    public MLImage Resize(MLImage image)
    {
        _row.Image = image;
        MLImage resized = null!; // null: the getter must not dispose a previous result it does not own
        try
        {
            _getter(ref resized);
        }
        finally
        {
            _row.Image = null;
        }
        return resized ?? throw new InvalidDataException($"ML.NET's resizer returned no image for a {image.Width}×{image.Height} input.");
    }

    private sealed class SingleImageRow : DataViewRow
    {
        public SingleImageRow(DataViewSchema schema) => Schema = schema;

        public MLImage? Image { get; set; }
        public override DataViewSchema Schema { get; }
        public override long Position => 0;
        public override long Batch => 0;
        public override bool IsColumnActive(DataViewSchema.Column column) => true;
        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = default;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (typeof(TValue) != typeof(MLImage)) throw new InvalidOperationException($"Column {column.Name} holds images.");
            ValueGetter<MLImage> getter = (ref MLImage value) => value = Image!;
            return (ValueGetter<TValue>)(Delegate)getter;
        }
    }
}
