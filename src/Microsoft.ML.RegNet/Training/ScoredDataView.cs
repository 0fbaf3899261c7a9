using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Pipeline;

namespace Microsoft.ML.RegNet.Training;

/// <summary>
/// The input rows plus Score and PredictedLabel. A second cursor over the same input runs ahead through the batched
/// image pipeline, so the network sees batches of <see cref="RegNetTransformer.ScoringBatchSize"/> while the visible
/// cursor still moves one row at a time; both read the input in the same order, so positions line up. The running-ahead
/// cursor reads the input through the evaluation transform's ML.NET steps (the resized image column).
/// </summary>
internal sealed class ScoredDataView : IDataView
{
    private readonly RegNetTransformer _transformer;
    private readonly IDataView _input;
    private readonly IDataView _prepared;

    public ScoredDataView(RegNetTransformer transformer, IDataView input, DataViewSchema schema)
    {
        _transformer = transformer;
        _input = input;
        _prepared = transformer.FitEvaluationPreprocessing(input.Schema).Transform(input);
        Schema = schema;
    }

    public bool CanShuffle => false;
    public DataViewSchema Schema { get; }
    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.ToList();
        int inputCount = _input.Schema.Count;
        bool scoring = needed.Any(c => c.Index >= inputCount);
        var inputNeeded = needed.Where(c => c.Index < inputCount).Select(c => _input.Schema[c.Index]);
        return new Cursor(this, _input.GetRowCursor(inputNeeded), scoring, needed.Select(c => c.Index).ToHashSet());
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly ScoredDataView _view;
        private readonly DataViewRowCursor _input;
        private readonly HashSet<int> _active;
        private readonly IEnumerator<ImageBatch>? _batches;
        private readonly int _classes;
        private float[] _scores = Array.Empty<float>();
        private long[] _rows = Array.Empty<long>();
        private int _rowInBatch = -1;

        public Cursor(ScoredDataView view, DataViewRowCursor input, bool scoring, HashSet<int> active)
        {
            _view = view;
            _input = input;
            _active = active;
            _classes = view._transformer.ClassNames.Count;
            if (scoring) _batches = view._transformer.CreateScoringPipeline().Read(view._prepared, epoch: 0).GetEnumerator();
        }

        public override DataViewSchema Schema => _view.Schema;
        public override long Position => _input.Position;
        public override long Batch => _input.Batch;
        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);
        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool MoveNext()
        {
            if (!_input.MoveNext()) return false;
            if (_batches is null) return true;
            _rowInBatch++;
            if (_rowInBatch >= _rows.Length)
            {
                if (!_batches.MoveNext())
                    throw new InvalidOperationException($"Scoring fell out of step with the input at row {_input.Position}.");
                using var batch = _batches.Current;
                _scores = _view._transformer.ScoreBatch(batch.Images);
                _rows = batch.RowIndices;
                _rowInBatch = 0;
            }
            if (_rows[_rowInBatch] != _input.Position)
                throw new InvalidOperationException($"Scoring fell out of step with the input: row {_rows[_rowInBatch]} scored for row {_input.Position}.");
            return true;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int inputCount = _view._input.Schema.Count;
            if (column.Index < inputCount) return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            if (column.Index == inputCount)
            {
                ValueGetter<VBuffer<float>> score = (ref VBuffer<float> dst) =>
                {
                    var editor = VBufferEditor.Create(ref dst, _classes);
                    _scores.AsSpan(_rowInBatch * _classes, _classes).CopyTo(editor.Values);
                    dst = editor.Commit();
                };
                return (ValueGetter<TValue>)(Delegate)score;
            }
            ValueGetter<uint> predicted = (ref uint dst) =>
            {
                var row = _scores.AsSpan(_rowInBatch * _classes, _classes);
                int best = 0;
                for (int i = 1; i < row.Length; i++) if (row[i] > row[best]) best = i;
                dst = (uint)best + 1;
            };
            return (ValueGetter<TValue>)(Delegate)predicted;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _batches?.Dispose();
                _input.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
