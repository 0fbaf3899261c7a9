using System.Globalization;
using Microsoft.ML.RegNet;
using Spectre.Console;
using RegNetML.Tool.Commands;

namespace RegNetML.Tool.Sweeps;

/// <summary>
/// A trial is an ordinary <c>regnet train</c> (run in this process through the same command tree), so its run folder
/// is like any other and <c>regnet runs</c> / <c>compare</c> show it. Its output goes to a log file beside sweep.json.
/// </summary>
internal sealed class TrainTrials(string sweepFolder, string sweepName, IReadOnlyList<string> baseArguments)
{
    /// <summary>The train arguments of a trial at a budget (without the command name).</summary>
    public IReadOnlyList<string> Arguments(Trial trial, int epochs) => baseArguments
        .Concat(new[] { "--epochs", epochs.ToString(CultureInfo.InvariantCulture) })
        .Concat(trial.Parameters.SelectMany(p => new[] { "--" + p.Key, p.Value.ToString("R", CultureInfo.InvariantCulture) }))
        .ToList();

    public TrialResult Train(Trial trial, int epochs, CancellationToken cancellation)
    {
        var args = new[] { "train" }.Concat(Arguments(trial, epochs))
            .Concat(new[] { "--name", $"{sweepName}-trial{trial.Id}-{epochs}ep" }).ToArray();
        using var log = new StringWriter(CultureInfo.InvariantCulture);
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No, Out = new AnsiConsoleOutput(log),
        });
        console.Profile.Width = 4096;
        int exitCode = RegNetApp.Run(args, console, cancellation);
        string output = log.ToString();
        File.WriteAllText(Path.Combine(sweepFolder, $"trial{trial.Id}-{epochs}ep.log"), "regnet " + CommandLine.Join(args) + Environment.NewLine + output);
        string? run = LastLine(output, "run: ");
        if (exitCode == TrainCommand.InterruptedExitCode || cancellation.IsCancellationRequested)
            return new TrialResult { Epochs = epochs, Status = "running", Run = run };
        if (exitCode != 0 || run is null)
            return new TrialResult { Epochs = epochs, Status = "failed", Run = run, Error = LastLine(output, "error: ") ?? $"regnet train exited with {exitCode}" };
        var loaded = RegNetRun.Load(run);
        var best = loaded.Metrics.Where(m => m.Phase == MetricsPhase.Validation).MaxBy(m => m.Accuracy);
        if (best is null)
            return new TrialResult { Epochs = epochs, Status = "failed", Run = run, Error = "the run has no validation records; give --val or --val-fraction" };
        return new TrialResult { Epochs = epochs, Status = "finished", Run = run, Top1 = best.Accuracy, Loss = best.Loss };
    }

    private static string? LastLine(string output, string prefix) =>
        output.Split('\n').Select(l => l.TrimEnd('\r')).LastOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..];
}

/// <summary>Command lines as a user would type them in a POSIX shell.</summary>
internal static class CommandLine
{
    public static string Join(IEnumerable<string> args) => string.Join(' ', args.Select(Quote));

    private static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? arg : "'" + arg.Replace("'", "'\\''") + "'";
}
