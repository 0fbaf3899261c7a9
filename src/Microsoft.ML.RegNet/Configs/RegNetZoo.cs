namespace Microsoft.ML.RegNet;

/// <summary>One published RegNet ImageNet model: its names in every ecosystem and its design-space parameters.</summary>
/// <param name="KerasName">Keras name, e.g. <c>RegNetX002</c> (the trailing digits are FLOPs × 10⁸).</param>
/// <param name="PaperName">pycls / paper name, e.g. <c>RegNetX-200MF</c>.</param>
/// <param name="TimmName">timm name, e.g. <c>regnetx_002</c>.</param>
/// <param name="Depth">Number of blocks d.</param>
/// <param name="W0">Initial width w0.</param>
/// <param name="WA">Width slope wa.</param>
/// <param name="WM">Width multiplier wm.</param>
/// <param name="GroupWidth">Group width g.</param>
/// <param name="SeRatio">SE ratio: 0 for X, 0.25 for Y.</param>
public sealed record RegNetZooEntry(
    string KerasName, string PaperName, string TimmName,
    int Depth, double W0, double WA, double WM, int GroupWidth, double SeRatio);

/// <summary>The 24 RegNetX/RegNetY models of "Designing Network Design Spaces", in Keras order (pycls dds_baselines configs).</summary>
public static class RegNetZoo
{
    private const double Se = 0.25;

    /// <summary>All 24 entries: X002…X320, then Y002…Y320.</summary>
    public static IReadOnlyList<RegNetZooEntry> Entries { get; } = new RegNetZooEntry[]
    {
        new("RegNetX002", "RegNetX-200MF", "regnetx_002", 13, 24, 36.44, 2.49, 8, 0),
        new("RegNetX004", "RegNetX-400MF", "regnetx_004", 22, 24, 24.48, 2.54, 16, 0),
        new("RegNetX006", "RegNetX-600MF", "regnetx_006", 16, 48, 36.97, 2.24, 24, 0),
        new("RegNetX008", "RegNetX-800MF", "regnetx_008", 16, 56, 35.73, 2.28, 16, 0),
        new("RegNetX016", "RegNetX-1.6GF", "regnetx_016", 18, 80, 34.01, 2.25, 24, 0),
        new("RegNetX032", "RegNetX-3.2GF", "regnetx_032", 25, 88, 26.31, 2.25, 48, 0),
        new("RegNetX040", "RegNetX-4.0GF", "regnetx_040", 23, 96, 38.65, 2.43, 40, 0),
        new("RegNetX064", "RegNetX-6.4GF", "regnetx_064", 17, 184, 60.83, 2.07, 56, 0),
        new("RegNetX080", "RegNetX-8.0GF", "regnetx_080", 23, 80, 49.56, 2.88, 120, 0),
        new("RegNetX120", "RegNetX-12GF", "regnetx_120", 19, 168, 73.36, 2.37, 112, 0),
        new("RegNetX160", "RegNetX-16GF", "regnetx_160", 22, 216, 55.59, 2.1, 128, 0),
        new("RegNetX320", "RegNetX-32GF", "regnetx_320", 23, 320, 69.86, 2.0, 168, 0),
        new("RegNetY002", "RegNetY-200MF", "regnety_002", 13, 24, 36.44, 2.49, 8, Se),
        new("RegNetY004", "RegNetY-400MF", "regnety_004", 16, 48, 27.89, 2.09, 8, Se),
        new("RegNetY006", "RegNetY-600MF", "regnety_006", 15, 48, 32.54, 2.32, 16, Se),
        new("RegNetY008", "RegNetY-800MF", "regnety_008", 14, 56, 38.84, 2.4, 16, Se),
        new("RegNetY016", "RegNetY-1.6GF", "regnety_016", 27, 48, 20.71, 2.65, 24, Se),
        new("RegNetY032", "RegNetY-3.2GF", "regnety_032", 21, 80, 42.63, 2.66, 24, Se),
        new("RegNetY040", "RegNetY-4.0GF", "regnety_040", 22, 96, 31.41, 2.24, 64, Se),
        new("RegNetY064", "RegNetY-6.4GF", "regnety_064", 25, 112, 33.22, 2.27, 72, Se),
        new("RegNetY080", "RegNetY-8.0GF", "regnety_080", 17, 192, 76.82, 2.19, 56, Se),
        new("RegNetY120", "RegNetY-12GF", "regnety_120", 19, 168, 73.36, 2.37, 112, Se),
        new("RegNetY160", "RegNetY-16GF", "regnety_160", 18, 200, 106.23, 2.48, 112, Se),
        new("RegNetY320", "RegNetY-32GF", "regnety_320", 20, 232, 115.89, 2.53, 232, Se),
    };

    private static readonly Dictionary<string, RegNetZooEntry> ByAlias = BuildAliases();

    /// <summary>Finds an entry by any accepted spelling (case-insensitive): <c>X002</c>, <c>RegNetX002</c>, <c>regnetx_002</c>, <c>RegNetX-200MF</c>.</summary>
    public static bool TryFind(string name, out RegNetZooEntry entry)
    {
        entry = null!;
        return name is not null && ByAlias.TryGetValue(Normalize(name), out entry!);
    }

    /// <summary>The accepted short names, for error messages.</summary>
    public static string ValidNames => string.Join(", ", Entries.Select(e => e.KerasName.Substring("RegNet".Length)));

    private static Dictionary<string, RegNetZooEntry> BuildAliases()
    {
        var aliases = new Dictionary<string, RegNetZooEntry>(StringComparer.Ordinal);
        foreach (var e in Entries)
        {
            aliases[Normalize(e.KerasName)] = e;
            aliases[Normalize(e.PaperName)] = e;
            aliases[Normalize(e.TimmName)] = e;
        }
        return aliases;
    }

    // "RegNetX-1.6GF" → "x1.6gf", "regnetx_002" → "x002", "X002" → "x002".
    private static string Normalize(string name)
    {
        string s = name.Trim().ToLowerInvariant().Replace("_", "").Replace("-", "").Replace(" ", "");
        return s.StartsWith("regnet", StringComparison.Ordinal) ? s.Substring("regnet".Length) : s;
    }
}
