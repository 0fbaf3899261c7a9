namespace Microsoft.ML.RegNet;

/// <summary>
/// A RegNet architecture: the design-space parameters (d, w0, wa, wm, g, b, SE) and the stages they generate.
/// </summary>
/// <remarks>
/// The quantized-linear rule (Radosavovic et al. 2020; pycls <c>generate_regnet</c>): continuous widths
/// u_j = w0 + wa·j, exponents k_j = round(log(u_j / w0) / log(wm)), block widths w0·wm^k_j rounded to a
/// multiple of 8; equal widths form a stage. Each stage width is then made a multiple of its group width,
/// after clipping the group width to the stage's bottleneck width (RegNetX080's first stage has one group).
/// </remarks>
public sealed partial class RegNetSpec : IEquatable<RegNetSpec>
{
    /// <summary>Width of the stem convolution in every RegNet.</summary>
    public const int DefaultStemWidth = 32;

    /// <summary>Widths are multiples of this quantum.</summary>
    public const int WidthQuantum = 8;

    private readonly BlockSpec[] _blocks;

    private RegNetSpec(string name, int depth, double w0, double wa, double wm, int groupWidth, double bottleneckRatio,
        double seRatio, WidthRounding rounding, int[] stageDepths, int[] stageWidths, int[] stageGroupWidths)
    {
        Name = name;
        Depth = depth;
        W0 = w0;
        WA = wa;
        WM = wm;
        GroupWidth = groupWidth;
        BottleneckRatio = bottleneckRatio;
        SeRatio = seRatio;
        Rounding = rounding;
        StageDepths = stageDepths;
        StageWidths = stageWidths;
        StageGroupWidths = stageGroupWidths;
        _blocks = PlanBlocks().ToArray();
    }

    /// <summary>Keras-style name (<c>RegNetX002</c>) for zoo models; a descriptive name for custom ones.</summary>
    public string Name { get; }
    /// <summary>Total number of blocks d over all stages.</summary>
    public int Depth { get; }
    /// <summary>Initial width w0 of the linear width rule, in channels.</summary>
    public double W0 { get; }
    /// <summary>Slope wa of the linear width rule, in channels per block.</summary>
    public double WA { get; }
    /// <summary>Width multiplier wm between consecutive stages (the rule quantizes widths to powers of it).</summary>
    public double WM { get; }
    /// <summary>The configured group width g (before clipping to a stage's width).</summary>
    public int GroupWidth { get; }
    /// <summary>Bottleneck ratio b: a block's inner width is its output width divided by b (1 for the zoo models).</summary>
    public double BottleneckRatio { get; }
    /// <summary>SE ratio relative to the block input width; 0 for RegNetX.</summary>
    public double SeRatio { get; }
    /// <summary>How widths are rounded to multiples of <see cref="WidthQuantum"/> (pycls/timm or torchvision).</summary>
    public WidthRounding Rounding { get; }
    /// <summary>Output channels of the stem convolution (always <see cref="DefaultStemWidth"/>).</summary>
    public int StemWidth => DefaultStemWidth;
    /// <summary>Number of blocks in each stage, first stage first.</summary>
    public IReadOnlyList<int> StageDepths { get; }
    /// <summary>Output channels of each stage, first stage first.</summary>
    public IReadOnlyList<int> StageWidths { get; }
    /// <summary>Group width of each stage after clipping to the stage's bottleneck width.</summary>
    public IReadOnlyList<int> StageGroupWidths { get; }
    /// <summary>Every block, in order, with its resolved widths, groups, stride and SE width.</summary>
    public IReadOnlyList<BlockSpec> Blocks => _blocks;
    /// <summary>Width of the pooled features fed to the classifier.</summary>
    public int FeatureWidth => StageWidths[^1];
    /// <summary>True for the Y family (squeeze-and-excitation blocks).</summary>
    public bool HasSqueezeExcitation => SeRatio > 0;

    /// <summary>The 24 ImageNet models, in Keras order (X002…X320, Y002…Y320).</summary>
    public static IReadOnlyList<RegNetSpec> All { get; } = RegNetZoo.Entries.Select(FromEntry).ToArray();

    /// <summary>
    /// One of the 24 models by name, case-insensitive: <c>X002</c>, <c>RegNetX002</c>, <c>regnetx_002</c> or <c>RegNetX-200MF</c>.
    /// </summary>
    /// <param name="name">The model name.</param>
    /// <param name="rounding">Width rounding; <see cref="WidthRounding.TorchVision"/> gives torchvision's variants.</param>
    /// <exception cref="ArgumentException">The name is not one of the 24 models.</exception>
    public static RegNetSpec FromName(string name, WidthRounding rounding = WidthRounding.Nearest)
    {
        if (!RegNetZoo.TryFind(name, out var entry))
            throw new ArgumentException(
                $"Unknown RegNet model '{name}'. Valid names: {RegNetZoo.ValidNames} " +
                "(also accepted as RegNetX002, regnetx_002 or RegNetX-200MF; for another architecture use RegNetSpec.Create).",
                nameof(name));
        return rounding == WidthRounding.Nearest
            ? All[RegNetZoo.Entries.ToList().IndexOf(entry)]
            : FromEntry(entry, rounding);
    }

    /// <summary>A custom architecture from the design-space parameters.</summary>
    /// <param name="depth">Number of blocks d (≥ 1).</param>
    /// <param name="w0">Initial width w0 (a positive multiple of 8).</param>
    /// <param name="wa">Slope wa (≥ 0).</param>
    /// <param name="wm">Width multiplier wm (&gt; 1).</param>
    /// <param name="groupWidth">Group width g of the 3×3 convolutions (≥ 1).</param>
    /// <param name="bottleneckRatio">Bottleneck ratio b (&gt; 0); 1 for every published RegNet.</param>
    /// <param name="seRatio">SE ratio (0 = RegNetX, 0.25 = RegNetY).</param>
    /// <param name="rounding">How stage widths are made compatible with the group width.</param>
    /// <param name="name">Optional display name.</param>
    public static RegNetSpec Create(int depth, double w0, double wa, double wm, int groupWidth,
        double bottleneckRatio = 1.0, double seRatio = 0.0, WidthRounding rounding = WidthRounding.Nearest, string? name = null)
    {
        if (depth < 1) throw new ArgumentException($"depth must be at least 1 (got {depth}).", nameof(depth));
        if (!(w0 > 0) || w0 % WidthQuantum != 0)
            throw new ArgumentException($"w0 must be a positive multiple of {WidthQuantum} (got {w0}).", nameof(w0));
        if (!(wa >= 0) || double.IsInfinity(wa)) throw new ArgumentException($"wa must be ≥ 0 (got {wa}).", nameof(wa));
        if (!(wm > 1) || double.IsInfinity(wm)) throw new ArgumentException($"wm must be > 1 (got {wm}).", nameof(wm));
        if (groupWidth < 1) throw new ArgumentException($"groupWidth must be ≥ 1 (got {groupWidth}).", nameof(groupWidth));
        if (!(bottleneckRatio > 0)) throw new ArgumentException($"bottleneckRatio must be > 0 (got {bottleneckRatio}).", nameof(bottleneckRatio));
        if (!(seRatio >= 0) || seRatio >= 1) throw new ArgumentException($"seRatio must be in [0, 1) (got {seRatio}).", nameof(seRatio));

        var (widths, depths) = QuantizedLinearStages(depth, w0, wa, wm);
        var (stageWidths, stageGroupWidths) = MakeCompatible(widths, groupWidth, bottleneckRatio, rounding);
        name ??= FormattableString.Invariant($"RegNet(d={depth}, w0={w0}, wa={wa}, wm={wm}, g={groupWidth}, b={bottleneckRatio}, se={seRatio})");
        return new RegNetSpec(name, depth, w0, wa, wm, groupWidth, bottleneckRatio, seRatio, rounding, depths, stageWidths, stageGroupWidths);
    }

    private static RegNetSpec FromEntry(RegNetZooEntry e) => FromEntry(e, WidthRounding.Nearest);

    private static RegNetSpec FromEntry(RegNetZooEntry e, WidthRounding rounding) =>
        Create(e.Depth, e.W0, e.WA, e.WM, e.GroupWidth, 1.0, e.SeRatio, rounding,
            rounding == WidthRounding.Nearest ? e.KerasName : e.KerasName + "_tv");

    // Steps 1–4 of the rule: per-block quantized widths, grouped into stages (distinct widths in ascending order).
    private static (int[] Widths, int[] Depths) QuantizedLinearStages(int depth, double w0, double wa, double wm)
    {
        var blockWidths = new int[depth];
        for (int j = 0; j < depth; j++)
        {
            double u = w0 + wa * j;
            double k = Math.Round(Math.Log(u / w0) / Math.Log(wm), MidpointRounding.ToEven);
            double w = w0 * Math.Pow(wm, k);
            blockWidths[j] = (int)(Math.Round(w / WidthQuantum, MidpointRounding.ToEven) * WidthQuantum);
        }
        var stages = blockWidths.GroupBy(w => w).OrderBy(g => g.Key).ToArray();
        return (stages.Select(g => g.Key).ToArray(), stages.Select(g => g.Count()).ToArray());
    }

    // Step 5: clip each group width to the bottleneck width, then round the bottleneck width to a multiple of it.
    private static (int[] Widths, int[] GroupWidths) MakeCompatible(int[] widths, int groupWidth, double b, WidthRounding rounding)
    {
        var outWidths = new int[widths.Length];
        var outGroups = new int[widths.Length];
        for (int i = 0; i < widths.Length; i++)
        {
            int bottleneck = Math.Max(1, (int)(widths[i] * b));
            int g = Math.Min(groupWidth, bottleneck);
            int rounded = rounding switch
            {
                WidthRounding.Nearest => Math.Max(g, (int)(Math.Round((double)bottleneck / g, MidpointRounding.ToEven) * g)),
                WidthRounding.TorchVision => MakeDivisible(bottleneck, g),
                _ => throw new ArgumentOutOfRangeException(nameof(rounding)),
            };
            outWidths[i] = (int)(rounded / b);
            outGroups[i] = g;
        }
        return (outWidths, outGroups);
    }

    // torchvision's _make_divisible(v, divisor) with min_value = divisor.
    private static int MakeDivisible(int v, int divisor)
    {
        int rounded = Math.Max(divisor, (int)(v + divisor / 2.0) / divisor * divisor);
        return rounded < 0.9 * v ? rounded + divisor : rounded;
    }

    private IEnumerable<BlockSpec> PlanBlocks()
    {
        int inWidth = StemWidth;
        for (int s = 0; s < StageDepths.Count; s++)
        {
            int outWidth = StageWidths[s];
            int bottleneck = (int)Math.Round(outWidth * BottleneckRatio);
            for (int k = 0; k < StageDepths[s]; k++)
            {
                int seWidth = HasSqueezeExcitation ? (int)Math.Round(inWidth * SeRatio, MidpointRounding.ToEven) : 0;
                yield return new BlockSpec(s + 1, k + 1, inWidth, outWidth, bottleneck, StageGroupWidths[s], k == 0 ? 2 : 1, seWidth);
                inWidth = outWidth;
            }
        }
    }

    /// <summary>Trainable parameters with a <paramref name="numberOfClasses"/>-way classifier (0 = headless).</summary>
    public long ParameterCount(int numberOfClasses = 1000)
    {
        if (numberOfClasses < 0) throw new ArgumentException($"numberOfClasses must be ≥ 0 (got {numberOfClasses}).", nameof(numberOfClasses));
        long total = 3L * StemWidth * 9 + 2L * StemWidth;
        foreach (var b in _blocks)
        {
            total += (long)b.InWidth * b.BottleneckWidth + 2L * b.BottleneckWidth;
            total += 9L * b.BottleneckWidth * b.GroupWidth + 2L * b.BottleneckWidth;
            if (b.SeWidth > 0) total += 2L * b.BottleneckWidth * b.SeWidth + b.SeWidth + b.BottleneckWidth;
            total += (long)b.BottleneckWidth * b.OutWidth + 2L * b.OutWidth;
            if (b.HasProjection) total += (long)b.InWidth * b.OutWidth + 2L * b.OutWidth;
        }
        if (numberOfClasses > 0) total += (long)FeatureWidth * numberOfClasses + numberOfClasses;
        return total;
    }

    /// <summary>Multiply-accumulates of one forward pass at <paramref name="imageSize"/>², pycls convention
    /// (convolutions and the linear layer, bias adds included; BN, activations and pooling excluded).</summary>
    public long Flops(int imageSize = 224, int numberOfClasses = 1000)
    {
        if (imageSize < 1) throw new ArgumentException($"imageSize must be ≥ 1 (got {imageSize}).", nameof(imageSize));
        static int Down(int size) => (size - 1) / 2 + 1; // 3×3 pad 1 or 1×1 pad 0, stride 2
        int size = Down(imageSize);
        long total = 9L * 3 * StemWidth * size * size;
        foreach (var b in _blocks)
        {
            long inArea = (long)size * size;
            if (b.Stride == 2) size = Down(size);
            long area = (long)size * size;
            total += b.InWidth * (long)b.BottleneckWidth * inArea;
            total += 9L * b.BottleneckWidth * b.GroupWidth * area;
            if (b.SeWidth > 0) total += 2L * b.BottleneckWidth * b.SeWidth + b.SeWidth + b.BottleneckWidth;
            total += (long)b.BottleneckWidth * b.OutWidth * area;
            if (b.HasProjection) total += (long)b.InWidth * b.OutWidth * area;
        }
        if (numberOfClasses > 0) total += (long)FeatureWidth * numberOfClasses + numberOfClasses;
        return total;
    }

    /// <summary>A one-line summary: name, stages, parameters and GFLOPs.</summary>
    public override string ToString() => FormattableString.Invariant(
        $"{Name}: depths [{string.Join(' ', StageDepths)}] widths [{string.Join(' ', StageWidths)}] group widths [{string.Join(' ', StageGroupWidths)}] SE {SeRatio}");

    /// <summary>Two specs are equal when they build the same network: same stage widths, depths, group widths, bottleneck ratio and SE ratio (names may differ).</summary>
    /// <param name="other">The spec to compare with.</param>
    public bool Equals(RegNetSpec? other) =>
        other is not null && StemWidth == other.StemWidth && SeRatio.Equals(other.SeRatio) && BottleneckRatio.Equals(other.BottleneckRatio)
        && StageDepths.SequenceEqual(other.StageDepths) && StageWidths.SequenceEqual(other.StageWidths)
        && StageGroupWidths.SequenceEqual(other.StageGroupWidths);

    /// <inheritdoc cref="Equals(RegNetSpec?)"/>
    public override bool Equals(object? obj) => Equals(obj as RegNetSpec);

    /// <summary>A hash consistent with <see cref="Equals(RegNetSpec?)"/>.</summary>
    public override int GetHashCode() => HashCode.Combine(string.Join(',', StageWidths), string.Join(',', StageDepths), SeRatio);
}
