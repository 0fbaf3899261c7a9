using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Data.Pipeline;

/// <summary>
/// The rows one rank of a data-parallel job reads (PyTorch's <c>DistributedSampler</c>): a permutation of the row numbers
/// drawn from (seed, epoch), padded with its first rows to a multiple of <see cref="Count"/> when <see cref="Pad"/>, of which
/// rank r takes every Count-th place starting at r. With padding every rank gets the same number of rows (so the same number
/// of steps, which keeps the collectives in step); without it (evaluation) every row is read exactly once.
/// The rows are then read in row order and go through the pipeline's shuffle buffer like an unsharded epoch's.
/// </summary>
internal sealed record RowShard(int Rank, int Count, bool Pad)
{
    /// <summary>Rows this rank reads of <paramref name="rows"/>.</summary>
    public long RowsOf(long rows) => Pad ? (rows + Count - 1) / Count : rows / Count + (Rank < rows % Count ? 1 : 0);

    /// <summary>This rank's row numbers, ascending.</summary>
    public long[] Rows(long rows, int seed, int epoch, bool shuffle)
    {
        var order = new long[rows];
        for (long i = 0; i < rows; i++) order[i] = i;
        if (shuffle) AugmentationRandom.ForEpoch(seed, epoch, purpose: 0x5348415244UL).Shuffle(order.AsSpan());
        var mine = new List<long>((int)RowsOf(rows));
        long total = Pad ? RowsOf(rows) * Count : rows;
        for (long place = Rank; place < total; place += Count) mine.Add(order[place % Math.Max(1, rows)]);
        mine.Sort();
        return mine.ToArray();
    }
}
