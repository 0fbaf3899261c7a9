using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.ML.RegNet;

namespace RegNetML.Tool.Tracking;

/// <summary>The filters and sort orders of <c>regnet runs</c>.</summary>
internal static partial class RunFilter
{
    public static IReadOnlyList<RegNetRun> Apply(IReadOnlyList<RegNetRun> runs, string? architecture, string? status, string? since, DateTime now)
    {
        IEnumerable<RegNetRun> kept = runs;
        if (architecture is not null) kept = kept.Where(r => r.Architecture.Contains(architecture, StringComparison.OrdinalIgnoreCase));
        if (status is not null)
        {
            if (!Enum.TryParse<RegNetRunStatus>(status, ignoreCase: true, out var wanted) || int.TryParse(status, out _))
                throw new UserError($"--status {status}: use running, finished, failed, interrupted or unknown.");
            kept = kept.Where(r => r.Status == wanted);
        }
        if (since is not null)
        {
            var from = ParseSince(since, now);
            kept = kept.Where(r => r.Started >= from);
        }
        return kept.ToList();
    }

    /// <summary>A date or date and time, or a time ago: a number and m, h or d.</summary>
    public static DateTime ParseSince(string since, DateTime now)
    {
        var ago = Ago().Match(since);
        if (ago.Success)
        {
            double n = double.Parse(ago.Groups[1].Value, CultureInfo.InvariantCulture);
            return now - ago.Groups[2].Value switch { "m" => TimeSpan.FromMinutes(n), "h" => TimeSpan.FromHours(n), _ => TimeSpan.FromDays(n) };
        }
        if (DateTime.TryParse(since, CultureInfo.InvariantCulture, DateTimeStyles.AssumeLocal, out var date)) return date;
        throw new UserError($"--since {since}: give a date (2026-11-28 or 2026-11-28T14:00) or a time ago (30m, 12h, 7d).");
    }

    public static IReadOnlyList<RegNetRun> Sort(IReadOnlyList<RegNetRun> runs, string key, IReadOnlyList<string> hyperparameters, bool reverse)
    {
        IOrderedEnumerable<RegNetRun> sorted = key.ToLowerInvariant() switch
        {
            "date" => runs.OrderBy(r => r.Started ?? DateTime.MaxValue),
            "top1" => runs.OrderByDescending(r => r.BestTop1 ?? double.NegativeInfinity),
            "wall" => runs.OrderBy(r => r.WallTime ?? TimeSpan.MaxValue),
            "epochs" => runs.OrderBy(r => r.Epochs),
            "arch" => runs.OrderBy(r => r.Architecture, StringComparer.Ordinal),
            "status" => runs.OrderBy(r => r.Status),
            "name" => runs.OrderBy(r => r.Name, StringComparer.Ordinal),
            _ when runs.Any(r => r.Hyperparameters.ContainsKey(key)) => runs.OrderBy(r => RunFacts.Value(r, key), NumbersFirst),
            _ => throw new UserError($"--sort {key}: use date, top1, wall, epochs, arch, status, name" +
                (hyperparameters.Count > 0 ? $" or a hyperparameter shown ({string.Join(", ", hyperparameters)})." : ".")),
        };
        var list = sorted.ThenBy(r => r.Name, StringComparer.Ordinal).ToList();
        if (reverse) list.Reverse();
        return list;
    }

    // Hyperparameter values are text; numbers among them sort by value (1e-3 before 0.01), the rest as text after them.
    private static readonly Comparer<string> NumbersFirst = Comparer<string>.Create((a, b) =>
    {
        bool na = double.TryParse(a, NumberStyles.Float, CultureInfo.InvariantCulture, out var x);
        bool nb = double.TryParse(b, NumberStyles.Float, CultureInfo.InvariantCulture, out var y);
        return na && nb ? x.CompareTo(y) : na ? -1 : nb ? 1 : string.CompareOrdinal(a, b);
    });

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)([mhd])$")]
    private static partial Regex Ago();
}
