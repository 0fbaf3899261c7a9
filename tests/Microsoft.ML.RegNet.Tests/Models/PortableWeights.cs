using System.Text;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Models;

/// <summary>
/// The deterministic weights of tests/fixtures/equivalence/generate_torchvision_fixtures.py, reproduced bit for bit:
/// FNV-1a-64 of the key seeds splitmix64; u = (z &gt;&gt; 40) / 2^24; value = lo + (hi − lo)·u in double, then float.
/// </summary>
internal static class PortableWeights
{
    public static Tensor Create(string key, long[] shape)
    {
        var (lo, hi) = Range(key, shape);
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var values = new float[count];
        ulong seed = Fnv1a64(key);
        for (long i = 0; i < count; i++)
        {
            ulong z = unchecked(seed + (ulong)(i + 1) * 0x9E3779B97F4A7C15UL);
            z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
            z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
            z ^= z >> 31;
            double u = (z >> 40) / (double)(1 << 24);
            values[i] = (float)(lo + (hi - lo) * u);
        }
        return tensor(values, shape);
    }

    private static (double Lo, double Hi) Range(string key, long[] shape)
    {
        if (key.EndsWith("running_var", StringComparison.Ordinal)) return (0.5, 1.5);
        if (key.EndsWith("running_mean", StringComparison.Ordinal) || key.EndsWith("bias", StringComparison.Ordinal)) return (-0.1, 0.1);
        if (shape.Length == 1) return (0.5, 1.0);
        long fanIn = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        double bound = shape.Length == 4 ? Math.Sqrt(3.0) * Math.Sqrt(2.0 / fanIn) : Math.Sqrt(3.0 / fanIn);
        return (-bound, bound);
    }

    private static ulong Fnv1a64(string text)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (byte b in Encoding.UTF8.GetBytes(text)) h = unchecked((h ^ b) * 0x100000001B3UL);
        return h;
    }
}
