using System.Runtime.InteropServices;
using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Data.Pipeline;

/// <summary>
/// A shuffle buffer (as tf.data's): fill a pool, then for each new item emit a random pooled one and put the new one in
/// its place; at the end emit the pool shuffled. Pure: the order depends only on the item count, the pool size and the
/// random stream, never on the items, which is what lets a resumed epoch work out which rows it skips without reading them.
/// </summary>
internal static class ShuffleBuffer
{
    public static IEnumerable<T> Shuffle<T>(IEnumerable<T> items, int poolSize, AugmentationRandom random)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(poolSize, 1);
        var pool = new List<T>(Math.Min(poolSize, 1 << 16));
        foreach (var item in items)
        {
            if (pool.Count < poolSize)
            {
                pool.Add(item);
                continue;
            }
            int j = random.NextInt(pool.Count);
            yield return pool[j];
            pool[j] = item;
        }
        random.Shuffle(CollectionsMarshal.AsSpan(pool));
        foreach (var item in pool) yield return item;
    }
}
