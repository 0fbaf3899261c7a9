using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.MLNet;
using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Training;

/// <summary>
/// <see cref="RegNetTransformer"/> one row at a time, for <c>PredictionEngine</c>: the evaluation transform's ML.NET
/// steps (the same fitted transformers a saved model contains) through their own row mapper, then the centred window,
/// the normalisation and a forward pass of one image, computed once per row position.
/// </summary>
internal sealed class RegNetRowMapper : IRowToRowMapper
{
    private readonly RegNetTransformer _parent;
    private readonly IRowToRowMapper _preprocessing;
    private readonly int _imageColumn;

    public RegNetRowMapper(RegNetTransformer parent, DataViewSchema inputSchema, DataViewSchema outputSchema)
    {
        _parent = parent;
        InputSchema = inputSchema;
        OutputSchema = outputSchema;
        _imageColumn = inputSchema[parent.ImageColumnName].Index;
        _preprocessing = parent.FitEvaluationPreprocessing(inputSchema).GetRowToRowMapper(inputSchema);
    }

    public DataViewSchema InputSchema { get; }
    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var needed = new HashSet<int>();
        foreach (var column in dependingColumns)
            needed.Add(column.Index < InputSchema.Count ? column.Index : _imageColumn);
        return needed.Order().Select(i => InputSchema[i]);
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns) =>
        new Row(this, input, activeColumns.Select(c => c.Index).ToHashSet());

    private sealed class Row : DataViewRow
    {
        private readonly RegNetRowMapper _mapper;
        private readonly DataViewRow _input;
        private readonly HashSet<int> _active;
        private readonly int _classes;
        private DataViewRow? _prepared;
        private ValueGetter<MLImage>? _resizedGetter;
        private MLImage _resized = null!;
        private float[] _chw = [];
        private float[] _scores = [];
        private long _scoredPosition = -1;

        public Row(RegNetRowMapper mapper, DataViewRow input, HashSet<int> active)
        {
            _mapper = mapper;
            _input = input;
            _active = active;
            _classes = mapper._parent.ClassNames.Count;
        }

        public override DataViewSchema Schema => _mapper.OutputSchema;
        public override long Position => _input.Position;
        public override long Batch => _input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int inputCount = _mapper.InputSchema.Count;
            if (column.Index < inputCount) return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            if (column.Index == inputCount)
            {
                ValueGetter<VBuffer<float>> score = (ref VBuffer<float> dst) =>
                {
                    var scores = Scores();
                    var editor = VBufferEditor.Create(ref dst, _classes);
                    scores.CopyTo(editor.Values);
                    dst = editor.Commit();
                };
                return (ValueGetter<TValue>)(Delegate)score;
            }
            ValueGetter<uint> predicted = (ref uint dst) =>
            {
                var row = Scores();
                int best = 0;
                for (int i = 1; i < row.Length; i++) if (row[i] > row[best]) best = i;
                dst = (uint)best + 1;
            };
            return (ValueGetter<TValue>)(Delegate)predicted;
        }

        private float[] Scores()
        {
            if (_scoredPosition == _input.Position && _scores.Length > 0) return _scores;
            if (_resizedGetter is null)
            {
                var pre = _mapper._preprocessing;
                _prepared = pre.GetRow(_input, pre.OutputSchema.Where(c => c.Name == EvaluationPreprocessing.ResizedColumnName));
                _resizedGetter = _prepared.GetGetter<MLImage>(pre.OutputSchema[EvaluationPreprocessing.ResizedColumnName]);
            }
            // The same variable every call, as ML.NET's own cursors use getters: the resizer disposes its previous output.
            _resizedGetter(ref _resized);
            var parent = _mapper._parent;
            if (_resized is null)
                throw new InvalidDataException($"Row {_input.Position}: the image column '{parent.ImageColumnName}' holds no image.");
            var window = parent.Crop.Window(ImageDecoder.FromMLImage(_resized, $"row {_input.Position}"));
            if (_chw.Length == 0) _chw = new float[3 * window.Width * window.Height];
            PixelNormalizer.WriteChw(window, parent.Preprocessing.Normalization, _chw);
            _scores = parent.ScoreOne(_chw);
            _scoredPosition = _input.Position;
            return _scores;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _prepared?.Dispose();
            base.Dispose(disposing);
        }
    }
}
