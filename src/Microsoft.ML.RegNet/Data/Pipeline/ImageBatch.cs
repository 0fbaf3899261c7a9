using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Data.Pipeline;

/// <summary>
/// One batch from <see cref="ImageBatchPipeline"/>. The batch owns its tensors (they belong to no dispose scope):
/// dispose the batch, or move/clone the tensors you keep.
/// </summary>
internal sealed class ImageBatch : IDisposable
{
    internal ImageBatch(int index, Tensor images, Tensor? labels, long[] rowIndices, IReadOnlyList<BadRow> badRows)
    {
        Index = index;
        Images = images;
        Labels = labels;
        RowIndices = rowIndices;
        BadRows = badRows;
    }

    /// <summary>Position of the batch in the epoch (counting skipped batches).</summary>
    public int Index { get; }

    /// <summary><c>N×3×ImageSize×ImageSize</c> float32, normalised, on the CPU.</summary>
    public Tensor Images { get; }

    /// <summary><c>N</c> int64 0-based class indices (key − 1); null without a label column.</summary>
    public Tensor? Labels { get; }

    /// <summary>True when <see cref="Images"/> holds the frozen trunk's output for these rows (read from the trainer's cache)
    /// instead of images.</summary>
    public bool HoldsTrunkOutput { get; init; }

    /// <summary>Source row index (cursor position in the data view) of each image.</summary>
    public long[] RowIndices { get; }

    /// <summary>Images in the batch.</summary>
    public int Count => RowIndices.Length;

    /// <summary>Rows of this batch left out under <see cref="BadImagePolicy.Skip"/>.</summary>
    public IReadOnlyList<BadRow> BadRows { get; }

    /// <summary>Disposes the tensors.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Labels?.Dispose();
    }
}

/// <summary>A row that could not be used (<see cref="RowIndex"/>, its cursor position) and why (<see cref="Reason"/>).</summary>
internal readonly record struct BadRow(long RowIndex, string Reason)
{
    /// <summary>"row 17: reason".</summary>
    public override string ToString() => $"row {RowIndex}: {Reason}";
}
