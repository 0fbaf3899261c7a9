using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.RegNet.Data.MLNet;

/// <summary>
/// A data view with one random image operation applied to an <c>MLImage</c> column (the output is an RGBA
/// <c>MLImage</c> that <c>ExtractPixels</c> and ML.NET's other image transforms accept). It is data, not a transformer, so
/// it can never become part of a fitted model and run at prediction time.
/// </summary>
/// <remarks>
/// Randomness: the row at position p of the k-th cursor opened on this view (k = 0, 1, …) uses
/// <see cref="AugmentationRandom.ForSample"/>(seed, k, p), so each pass over the data (an epoch of a trainer) draws new
/// augmentations, and the same sequence of passes repeats exactly for the same seed.
/// </remarks>
internal sealed class AugmentedImageDataView : IDataView
{
    private readonly ImageOperation _operation;
    private readonly IDataView _input;
    private readonly string _inputColumn;
    private readonly int _seed;
    private long _passes = -1;

    public AugmentedImageDataView(ImageOperation operation, IDataView input, string outputColumn, string inputColumn, int seed)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentException.ThrowIfNullOrEmpty(outputColumn);
        ArgumentException.ThrowIfNullOrEmpty(inputColumn);
        _operation = operation;
        _input = input;
        _inputColumn = inputColumn;
        _seed = seed;
        var column = input.Schema.GetColumnOrNull(inputColumn)
            ?? throw new ArgumentOutOfRangeException(nameof(inputColumn), $"Input column '{inputColumn}' not found. Columns: {string.Join(", ", input.Schema.Select(c => c.Name))}.");
        if (column.Type is not ImageDataViewType inputType)
            throw new ArgumentOutOfRangeException(nameof(inputColumn), $"Column '{inputColumn}' must be an image (mlContext.Transforms.LoadImages), not {column.Type}.");
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input.Schema);
        builder.AddColumn(outputColumn, operation.OutputWidth > 0 ? new ImageDataViewType(operation.OutputHeight, operation.OutputWidth) : inputType);
        Schema = builder.ToSchema();
    }

    public bool CanShuffle => _input.CanShuffle;
    public DataViewSchema Schema { get; }
    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.ToList();
        int outputIndex = _input.Schema.Count;
        var inputColumns = needed.Where(c => c.Index < outputIndex).Select(c => _input.Schema[c.Index]).ToList();
        bool active = needed.Any(c => c.Index == outputIndex);
        if (active) inputColumns.Add(_input.Schema[_inputColumn]);
        var cursor = _input.GetRowCursor(inputColumns.Distinct(), rand);
        return new Cursor(this, cursor, active, Interlocked.Increment(ref _passes));
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private ValueGetter<MLImage> MakeGetter(DataViewRow input, long pass)
    {
        var inputGetter = input.GetGetter<MLImage>(input.Schema[_inputColumn]);
        MLImage source = null!;
        return (ref MLImage value) =>
        {
            inputGetter(ref source);
            if (source is null)
            {
                value = null!;
                return;
            }
            var rgb = ImageDecoder.FromMLImage(source, $"row {input.Position}");
            value = ImageDecoder.ToMLImage(_operation.Apply(rgb, AugmentationRandom.ForSample(_seed, pass, input.Position)));
        };
    }

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly AugmentedImageDataView _view;
        private readonly DataViewRowCursor _input;
        private readonly bool _active;
        private readonly Delegate? _getter;

        public Cursor(AugmentedImageDataView view, DataViewRowCursor input, bool active, long pass)
        {
            _view = view;
            _input = input;
            _active = active;
            if (active) _getter = view.MakeGetter(input, pass);
        }

        public override DataViewSchema Schema => _view.Schema;
        public override long Position => _input.Position;
        public override long Batch => _input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();
        public override bool MoveNext() => _input.MoveNext();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index < _input.Schema.Count ? _input.IsColumnActive(_input.Schema[column.Index]) : _active;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _input.Schema.Count) return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            if (!_active) throw new InvalidOperationException($"Column '{column.Name}' is not active.");
            return _getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException($"Column '{column.Name}' holds MLImage values, not {typeof(TValue).Name}.");
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _input.Dispose();
            base.Dispose(disposing);
        }
    }
}
