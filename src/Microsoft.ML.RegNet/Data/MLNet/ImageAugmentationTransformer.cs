using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.RegNet.Data.MLNet;

/// <summary>
/// Applies one image operation to an <c>MLImage</c> column, adding (or replacing) the output column; the result is an
/// RGBA <c>MLImage</c> that <c>ExtractPixels</c> and the other image transforms accept.
/// </summary>
/// <remarks>
/// Randomness: the row at position p of the k-th cursor opened on the transformed data (k = 0, 1, …) uses
/// <see cref="AugmentationRandom.ForSample"/>(seed, k, p), so a fresh pass over the data (a new epoch of a trainer)
/// draws new augmentations, and the same sequence of passes repeats exactly for the same seed.
/// Not persistable: <see cref="Save"/> throws, since augmentations are training-time only (the evaluation crop
/// is a property of the weights and is rebuilt from their <see cref="PreprocessingSpec"/>).
/// </remarks>
public sealed class ImageAugmentationTransformer : ITransformer
{
    private readonly ImageOperation _operation;
    private readonly int _seed;
    private long _passes = -1;

    internal ImageAugmentationTransformer(ImageOperation operation, string outputColumnName, string inputColumnName, int seed)
    {
        _operation = operation;
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        _seed = seed;
    }

    /// <summary>Output column.</summary>
    public string OutputColumnName { get; }

    /// <summary>Input image column.</summary>
    public string InputColumnName { get; }

    /// <summary>The operation's name (e.g. "RandomResizedCrop").</summary>
    public string Operation => _operation.Name;

    /// <inheritdoc/>
    public bool IsRowToRowMapper => true;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var column = inputSchema.GetColumnOrNull(InputColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Input column '{InputColumnName}' not found.");
        if (column.Type is not ImageDataViewType inputType)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Column '{InputColumnName}' must be an image (LoadImages), not {column.Type}.");
        var outputType = _operation.OutputWidth > 0 ? new ImageDataViewType(_operation.OutputHeight, _operation.OutputWidth) : inputType;
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        builder.AddColumn(OutputColumnName, outputType);
        return builder.ToSchema();
    }

    /// <inheritdoc/>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new AugmentedDataView(this, input, GetOutputSchema(input.Schema));
    }

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema, GetOutputSchema(inputSchema));

    /// <summary>Not supported: augmentation transforms are training-time only and are not saved with a model.</summary>
    public void Save(ModelSaveContext ctx) =>
        throw new NotSupportedException($"The {Operation} transform is not saved with ML.NET models; rebuild it from its settings when training resumes.");

    private long NextPass() => Interlocked.Increment(ref _passes);

    /// <summary>Builds the output getter over an input row (a cursor or a single row).</summary>
    private ValueGetter<MLImage> MakeGetter(DataViewRow input, long pass)
    {
        var inputColumn = input.Schema[InputColumnName];
        var inputGetter = input.GetGetter<MLImage>(inputColumn);
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
            var random = AugmentationRandom.ForSample(_seed, pass, input.Position);
            value = ImageDecoder.ToMLImage(_operation.Apply(rgb, random));
        };
    }

    private static bool Needs(IEnumerable<DataViewSchema.Column> columns, int outputIndex) => columns.Any(c => c.Index == outputIndex);

    private sealed class AugmentedDataView(ImageAugmentationTransformer parent, IDataView input, DataViewSchema schema) : IDataView
    {
        public bool CanShuffle => input.CanShuffle;

        public DataViewSchema Schema => schema;

        public long? GetRowCount() => input.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            var needed = columnsNeeded.ToList();
            int outputIndex = input.Schema.Count;
            var inputColumns = needed.Where(c => c.Index < outputIndex).Select(c => input.Schema[c.Index]).ToList();
            bool active = Needs(needed, outputIndex);
            if (active) inputColumns.Add(input.Schema[parent.InputColumnName]);
            var cursor = input.GetRowCursor(inputColumns.Distinct(), rand);
            return new Cursor(parent, cursor, schema, active, parent.NextPass());
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            new[] { GetRowCursor(columnsNeeded, rand) };
    }

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly DataViewRowCursor _input;
        private readonly DataViewSchema _schema;
        private readonly bool _active;
        private readonly Delegate? _getter;

        public Cursor(ImageAugmentationTransformer parent, DataViewRowCursor input, DataViewSchema schema, bool active, long pass)
        {
            _input = input;
            _schema = schema;
            _active = active;
            if (active) _getter = parent.MakeGetter(input, pass);
        }

        public override DataViewSchema Schema => _schema;

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

    private sealed class Mapper(ImageAugmentationTransformer parent, DataViewSchema inputSchema, DataViewSchema outputSchema) : IRowToRowMapper
    {
        public DataViewSchema InputSchema => inputSchema;

        public DataViewSchema OutputSchema => outputSchema;

        public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
        {
            var list = dependingColumns.ToList();
            var result = list.Where(c => c.Index < inputSchema.Count).Select(c => inputSchema[c.Index]).ToList();
            if (Needs(list, inputSchema.Count)) result.Add(inputSchema[parent.InputColumnName]);
            return result.Distinct();
        }

        public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns) =>
            new MappedRow(parent, input, outputSchema, Needs(activeColumns, inputSchema.Count), parent.NextPass());
    }

    private sealed class MappedRow : DataViewRow
    {
        private readonly DataViewRow _input;
        private readonly DataViewSchema _schema;
        private readonly bool _active;
        private readonly Delegate? _getter;

        public MappedRow(ImageAugmentationTransformer parent, DataViewRow input, DataViewSchema schema, bool active, long pass)
        {
            _input = input;
            _schema = schema;
            _active = active;
            if (active) _getter = parent.MakeGetter(input, pass);
        }

        public override DataViewSchema Schema => _schema;

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index < _input.Schema.Count ? _input.IsColumnActive(_input.Schema[column.Index]) : _active;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _input.Schema.Count) return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            if (!_active) throw new InvalidOperationException($"Column '{column.Name}' is not active.");
            return _getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException($"Column '{column.Name}' holds MLImage values, not {typeof(TValue).Name}.");
        }
    }
}
