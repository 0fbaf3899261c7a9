using System.ComponentModel;
using System.Globalization;
using Microsoft.ML.RegNet;
using RegNetML.Tool.Tracking;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RegNetML.Tool.Commands;

/// <summary><c>regnet runs</c>: every run of a workspace as a table, with the hyperparameters that differ between the
/// runs shown, filtered and sorted.</summary>
internal sealed class RunsCommand(IAnsiConsole console) : Command<RunsCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("-w|--workspace <DIR>")]
        [Description("The workspace given when training (its runs/ folder holds the runs). Default: " + Tracking.Workspace.Default + ".")]
        public string Workspace { get; init; } = Tracking.Workspace.Default;

        [CommandOption("--arch <NAME>")]
        [Description("Only runs whose architecture contains this text (X002 matches RegNetX002).")]
        public string? Architecture { get; init; }

        [CommandOption("--status <STATUS>")]
        [Description("Only runs with this status: running, finished, failed, interrupted or unknown.")]
        public string? Status { get; init; }

        [CommandOption("--since <WHEN>")]
        [Description("Only runs started since a date (2026-11-28, 2026-11-28T14:00) or a time ago (30m, 12h, 7d).")]
        public string? Since { get; init; }

        [CommandOption("--sort <KEY>")]
        [Description("date (default, oldest first), top1 (best first), wall, epochs, arch, status, name, or a hyperparameter shown in the table.")]
        public string Sort { get; init; } = "date";

        [CommandOption("--reverse")]
        [Description("Reverse the order.")]
        public bool Reverse { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var all = RegNetRun.List(settings.Workspace);
        if (all.Count == 0)
        {
            console.WriteLine($"No runs under {Path.Combine(settings.Workspace, "runs")}.");
            return 0;
        }
        var runs = RunFilter.Apply(all, settings.Architecture, settings.Status, settings.Since, DateTime.Now);
        if (runs.Count == 0)
        {
            console.WriteLine($"None of the {all.Count} runs under {Path.Combine(settings.Workspace, "runs")} matches the filters.");
            return 0;
        }
        var differing = RunFacts.DifferingHyperparameters(runs);
        runs = RunFilter.Sort(runs, settings.Sort, differing, settings.Reverse);
        var table = new Table().AddColumns("date", "run", "arch");
        foreach (var key in differing) table.AddColumn(key);
        table.AddColumns("epochs", "best top-1", "wall", "status");
        foreach (var run in runs)
            table.AddRow(new[] { RunFacts.Date(run), run.Name, run.Architecture }
                .Concat(differing.Select(key => RunFacts.Value(run, key)))
                .Concat(new[] { RunFacts.Epochs(run), RunFacts.Top1(run), RunFacts.Wall(run), RunFacts.Status(run) })
                .Select(Markup.Escape).ToArray());
        console.Write(table);
        console.WriteLine(differing.Count == 0
            ? $"{runs.Count} runs; their hyperparameters are all the same."
            : $"{runs.Count} runs; shown: the hyperparameters that differ between them ({differing.Count}).");
        return 0;
    }
}
