namespace Microsoft.ML.RegNet.Data.Transforms;

/// <summary>
/// A small, fast, seedable random source (xoshiro256**, seeded through SplitMix64) used by every augmentation.
/// Its output depends only on its seed, never on the .NET version or the thread it runs on, so a sample's stream can be
/// derived from <c>(seed, epoch, sample index)</c> with <see cref="ForSample"/> and results do not depend on scheduling.
/// </summary>
/// <remarks>An instance is not thread-safe; give each thread (or each sample) its own.</remarks>
internal sealed class AugmentationRandom
{
    private ulong _s0, _s1, _s2, _s3;
    private double? _spareGaussian;

    /// <summary>Creates a stream from a 64-bit seed.</summary>
    public AugmentationRandom(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
    }

    /// <summary>Creates a stream from a 32-bit seed (for example the MLContext seed).</summary>
    public AugmentationRandom(int seed) : this(Mix((ulong)(uint)seed, 0x5EED, 0)) { }

    /// <summary>The stream of one sample: a pure function of (seed, epoch, index).</summary>
    public static AugmentationRandom ForSample(int seed, long epoch, long index) =>
        new(Mix((ulong)(uint)seed, (ulong)epoch, (ulong)index));

    /// <summary>The stream of an epoch-level decision (shuffle order, batch mixing), distinct from every sample stream.</summary>
    public static AugmentationRandom ForEpoch(int seed, long epoch, ulong purpose) =>
        new(Mix((ulong)(uint)seed ^ 0xA5A5_0000_0000_0000UL, (ulong)epoch, purpose ^ 0xFFFF_FFFF_0000_0000UL));

    /// <summary>The stream of a batch-level decision (Mixup/CutMix λ, partners, box) for batch <paramref name="batchIndex"/> of an epoch.</summary>
    public static AugmentationRandom ForBatch(int seed, long epoch, long batchIndex) =>
        new(Mix((ulong)(uint)seed ^ 0x5A5A_0000_0000_0000UL, (ulong)epoch, (ulong)batchIndex ^ 0x0000_FFFF_FFFF_0000UL));

    private static ulong Mix(ulong a, ulong b, ulong c)
    {
        ulong x = a * 0x9E3779B97F4A7C15UL;
        x = Finalize(x ^ (b + 0x632BE59BD9B4E019UL));
        x = Finalize(x ^ (c + 0xD1B54A32D192ED03UL));
        return x;
    }

    private static ulong Finalize(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong SplitMix(ref ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        return Finalize(x);
    }

    /// <summary>Next raw 64 bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform on [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform on [min, max).</summary>
    public double NextDouble(double min, double max) => min + (max - min) * NextDouble();

    /// <summary>Uniform integer on [0, maxExclusive); <paramref name="maxExclusive"/> must be positive.</summary>
    public int NextInt(int maxExclusive)
    {
        if (maxExclusive <= 0) throw new ArgumentOutOfRangeException(nameof(maxExclusive), maxExclusive, "Must be positive.");
        // Lemire's multiply-shift; the bias is below 2^-32 for the ranges used here.
        return (int)(((NextUInt64() >> 32) * (ulong)maxExclusive) >> 32);
    }

    /// <summary>True with probability <paramref name="p"/>.</summary>
    public bool NextBool(double p) => NextDouble() < p;

    /// <summary>Standard normal (Marsaglia polar method).</summary>
    public double NextGaussian()
    {
        if (_spareGaussian is double spare)
        {
            _spareGaussian = null;
            return spare;
        }
        double u, v, s;
        do
        {
            u = 2 * NextDouble() - 1;
            v = 2 * NextDouble() - 1;
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        double f = Math.Sqrt(-2 * Math.Log(s) / s);
        _spareGaussian = v * f;
        return u * f;
    }

    /// <summary>Gamma(shape, 1) (Marsaglia–Tsang; shape &lt; 1 through the U^(1/shape) boost).</summary>
    public double NextGamma(double shape)
    {
        if (!(shape > 0)) throw new ArgumentOutOfRangeException(nameof(shape), shape, "Must be positive.");
        if (shape < 1)
        {
            double u = NextDouble();
            return NextGamma(shape + 1) * Math.Pow(u == 0 ? double.Epsilon : u, 1 / shape);
        }
        double d = shape - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do
            {
                x = NextGaussian();
                v = 1 + c * x;
            } while (v <= 0);
            v = v * v * v;
            double u = NextDouble();
            if (u < 1 - 0.0331 * x * x * x * x) return d * v;
            if (Math.Log(u) < 0.5 * x * x + d * (1 - v + Math.Log(v))) return d * v;
        }
    }

    /// <summary>Beta(a, b) as Ga/(Ga+Gb).</summary>
    public double NextBeta(double a, double b)
    {
        double x = NextGamma(a), y = NextGamma(b);
        return x + y == 0 ? 0.5 : x / (x + y);
    }

    /// <summary>Fisher–Yates shuffle in place.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
