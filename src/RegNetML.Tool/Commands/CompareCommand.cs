using System.ComponentModel;
using RegNetML.Tool.Tracking;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RegNetML.Tool.Commands;

/// <summary><c>regnet compare</c>: a self-contained HTML report of several runs (overlaid curves, hyperparameter table).</summary>
internal sealed class CompareCommand(IAnsiConsole console) : Command<CompareCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<RUN>")]
        [Description("Run folders, or run names under the workspace's runs/ as 'regnet runs' lists them.")]
        public string[] Runs { get; init; } = Array.Empty<string>();

        [CommandOption("-o|--output <FILE>")]
        [Description("The HTML file to write (default report.html).")]
        public string Output { get; init; } = "report.html";

        [CommandOption("-w|--workspace <DIR>")]
        [Description("Where run names are looked up (its runs/ folder). Default: " + Tracking.Workspace.Default + ".")]
        public string Workspace { get; init; } = Tracking.Workspace.Default;
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var runs = settings.Runs.Select(r => RunFacts.Resolve(r, settings.Workspace)).ToList();
        if (runs.Select(r => r.Path).Distinct().Count() < runs.Count)
            throw new UserError("The same run is given twice; name each run once.");
        string html = HtmlReport.Build(runs, DateTime.Now);
        string output = Path.GetFullPath(settings.Output);
        string? folder = Path.GetDirectoryName(output);
        if (folder is not null && !Directory.Exists(folder))
            throw new UserError($"Cannot write {output}: the folder {folder} does not exist. Create it or pick another -o.");
        File.WriteAllText(output, html);
        console.WriteLine($"report: {output} ({runs.Count} runs)");
        return 0;
    }
}
