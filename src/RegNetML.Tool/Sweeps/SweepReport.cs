using System.Globalization;
using Spectre.Console;

namespace RegNetML.Tool.Sweeps;

/// <summary>The end of a sweep: every trial's results by budget, the best configuration against the default one, and
/// the full regnet train command that trains the best configuration.</summary>
internal static class SweepReport
{
    public static void Write(IAnsiConsole console, SweepState state, Trial best, TrialResult bestResult, TrainTrials trials)
    {
        var rungs = SweepScheduler.Rungs(state.Definition);
        var table = new Table().AddColumns("trial", "parameters");
        foreach (var epochs in rungs) table.AddColumn($"top-1 @ {epochs} ep");
        foreach (var trial in state.Trials)
            table.AddRow(new[] { trial.Id.ToString(CultureInfo.InvariantCulture) + (trial == best ? " (best)" : ""), Parameters(trial) }
                .Concat(rungs.Select(e => trial.At(e) is { } r ? Top1(r) : "")).Select(Markup.Escape).ToArray());
        console.Write(table);
        console.WriteLine($"best: trial {best.Id} ({Parameters(best)}): validation top-1 {Top1(bestResult)} after {bestResult.Epochs} epochs; run: {bestResult.Run}");
        if (state.Definition.IncludeDefault && best.Id != 0)
        {
            var baseline = state.Trials[0];
            int reached = rungs.Last(e => baseline.At(e) is not null);
            console.WriteLine($"default: trial 0 (train's defaults): validation top-1 {Top1(baseline.At(reached)!)} after {reached} epochs" +
                (reached == bestResult.Epochs ? "" : $" (dropped there; the best had {Top1(best.At(reached)!)} at that budget)"));
        }
        console.WriteLine("train it with:");
        console.Raw("  regnet " + CommandLine.Join(new[] { "train" }.Concat(trials.Arguments(best, state.Definition.MaxEpochs))));
    }

    /// <summary>The trial's searched values as name=value, or the default configuration.</summary>
    public static string Parameters(Trial trial) => trial.Parameters.Count == 0
        ? "train's defaults"
        : string.Join(", ", trial.Parameters.Select(p => $"{p.Key}={p.Value.ToString("R", CultureInfo.InvariantCulture)}"));

    private static string Top1(TrialResult r) => r.Status == "finished" ? (100 * r.Top1!.Value).ToString("F2", CultureInfo.InvariantCulture) + " %" : r.Status;
}
