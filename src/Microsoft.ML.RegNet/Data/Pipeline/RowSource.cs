using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Data.Pipeline;

/// <summary>
/// Walks a data view in row order and turns each row into a <see cref="RowSample"/>. A row the caller marks as unread is
/// passed over without calling any getter, so its file is neither read nor decoded. Runs on the pipeline's reader thread.
/// </summary>
internal sealed class RowSource : IDisposable
{
    private readonly DataViewRowCursor _cursor;
    private readonly ValueGetter<VBuffer<byte>>? _bytesGetter;
    private readonly ValueGetter<MLImage>? _imageGetter;
    private readonly ValueGetter<uint>? _labelGetter;
    private VBuffer<byte> _bytes;
    private MLImage _image = null!;

    public RowSource(IDataView data, ImageColumns columns)
    {
        var active = columns.Label is { } l ? new[] { columns.Image, l } : new[] { columns.Image };
        _cursor = SerialCursor(data, active);
        _bytesGetter = columns.IsBytes ? _cursor.GetGetter<VBuffer<byte>>(columns.Image) : null;
        _imageGetter = columns.IsBytes ? null : _cursor.GetGetter<MLImage>(columns.Image);
        _labelGetter = columns.Label is { } lc ? _cursor.GetGetter<uint>(lc) : null;
    }

    /// <summary>Rows counted without reading any column (for working out which rows a resumed epoch skips).</summary>
    public static long CountRows(IDataView data)
    {
        if (data.GetRowCount() is { } known) return known;
        long rows = 0;
        using var cursor = data.GetRowCursor(Array.Empty<DataViewSchema.Column>());
        while (cursor.MoveNext()) rows++;
        return rows;
    }

    public IEnumerable<RowSample> Rows(Func<long, bool> unread, CancellationToken token)
    {
        while (_cursor.MoveNext())
        {
            token.ThrowIfCancellationRequested();
            long row = _cursor.Position;
            yield return unread(row) ? new RowSample.Unread(row) : Read(row);
        }
    }

    public void Dispose() => _cursor.Dispose();

    // A one-cursor set, never ML.NET's consolidated parallel cursor: that one runs the getters (LoadRawImageBytes reads
    // the file in its getter) on its own threads inside MoveNext, so one unreadable file would end the whole epoch with
    // "Splitter/consolidator worker encountered exception" instead of failing or skipping that row here.
    private static DataViewRowCursor SerialCursor(IDataView data, DataViewSchema.Column[] active)
    {
        var cursors = data.GetRowCursorSet(active, 1);
        if (cursors.Length == 1) return cursors[0];
        foreach (var c in cursors) c.Dispose();
        throw new InvalidOperationException($"{data.GetType().Name} returned {cursors.Length} cursors when asked for one.");
    }

    private RowSample Read(long row)
    {
        try
        {
            long label = 0;
            if (_labelGetter is not null)
            {
                uint key = 0;
                _labelGetter(ref key);
                if (key == 0) return Bad(row, "missing label (key 0).");
                label = (long)key - 1;
            }
            if (_bytesGetter is not null)
            {
                _bytesGetter(ref _bytes);
                return new RowSample.Encoded(row, label, _bytes.IsDense ? _bytes.GetValues().ToArray() : [.. _bytes.DenseValues()]);
            }
            // The same variable is handed back on every call, as ML.NET's own consumers do: the getter owns the image it
            // returned (a cached data view may return it again), so it is copied, not disposed.
            _imageGetter!(ref _image);
            if (_image is null) return Bad(row, "no image.");
            var pixels = ImageDecoder.TryFromMLImage(_image, out string? problem);
            return pixels is null ? Bad(row, problem!) : new RowSample.Decoded(row, label, pixels);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // ML.NET's getters throw for files they cannot read (LoadRawImageBytes: FileNotFoundException naming the path).
            return Bad(row, e.Message);
        }
    }

    private static RowSample.Bad Bad(long row, string reason) => new(new BadRow(row, reason));
}
