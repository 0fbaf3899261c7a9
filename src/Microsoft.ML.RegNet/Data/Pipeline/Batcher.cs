namespace Microsoft.ML.RegNet.Data.Pipeline;

/// <summary>Groups a stream into numbered batches. Pure: batch k holds items k·size … (k+1)·size − 1.</summary>
internal static class Batcher
{
    /// <summary>The batches from <paramref name="skipBatches"/> on (the items of earlier batches are passed over), the
    /// last one partial unless <paramref name="dropLast"/>.</summary>
    public static IEnumerable<(int Index, T[] Items)> Batches<T>(IEnumerable<T> items, int batchSize, int skipBatches, bool dropLast)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        long skip = (long)skipBatches * batchSize;
        int index = skipBatches;
        var current = new List<T>(batchSize);
        foreach (var item in items)
        {
            if (skip > 0)
            {
                skip--;
                continue;
            }
            current.Add(item);
            if (current.Count < batchSize) continue;
            yield return (index++, current.ToArray());
            current.Clear();
        }
        if (current.Count > 0 && !dropLast) yield return (index, current.ToArray());
    }
}
