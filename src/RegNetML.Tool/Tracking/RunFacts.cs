using System.Globalization;
using Microsoft.ML.RegNet;

namespace RegNetML.Tool.Tracking;

/// <summary>How runs are shown in the runs table and the comparison report: one formatting of each column, and the
/// hyperparameters that tell the shown runs apart.</summary>
internal static class RunFacts
{
    /// <summary>Hyperparameter keys whose values are not the same in every run (a key a run lacks counts as a value), sorted.</summary>
    public static IReadOnlyList<string> DifferingHyperparameters(IReadOnlyList<RegNetRun> runs) =>
        AllHyperparameters(runs).Where(key => runs.Select(r => Value(r, key)).Distinct().Count() > 1).ToList();

    /// <summary>Every hyperparameter key of any of the runs, sorted.</summary>
    public static IReadOnlyList<string> AllHyperparameters(IReadOnlyList<RegNetRun> runs) =>
        runs.SelectMany(r => r.Hyperparameters.Keys).Distinct().Order(StringComparer.Ordinal).ToList();

    /// <summary>The run's value of a hyperparameter, "–" when its config.json lacks it.</summary>
    public static string Value(RegNetRun run, string key) => run.Hyperparameters.TryGetValue(key, out var v) ? v : "–";

    public static string Date(RegNetRun run) => run.Started?.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) ?? "?";

    public static string Epochs(RegNetRun run) => run.MaxEpochs is { } max ? $"{run.Epochs}/{max}" : run.Epochs.ToString(CultureInfo.InvariantCulture);

    public static string Top1(RegNetRun run) => run.BestTop1 is { } top1 ? (100 * top1).ToString("F2", CultureInfo.InvariantCulture) + " %" : "–";

    public static string Wall(RegNetRun run) => run.WallTime is { } t
        ? $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}"
        : "–";

    public static string Status(RegNetRun run) => run.Status.ToString().ToLowerInvariant();

    /// <summary>A run given on the command line: a run folder, or the name of one under the workspace's runs/.</summary>
    public static RegNetRun Resolve(string runOrName, string workspace)
    {
        if (Directory.Exists(runOrName)) return RegNetRun.Load(runOrName);
        string underWorkspace = Path.Combine(workspace, "runs", runOrName);
        if (Directory.Exists(underWorkspace)) return RegNetRun.Load(underWorkspace);
        throw new UserError($"No run {runOrName}: it is neither a folder nor a run under {Path.Combine(workspace, "runs")}. " +
            "Pass a run folder, or a name that 'regnet runs' lists (with --workspace when it is elsewhere).");
    }
}
