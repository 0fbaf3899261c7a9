using System.ComponentModel;
using Microsoft.ML.RegNet;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RegNetML.Tool.Commands;

/// <summary><c>regnet zoo</c>: the model zoo as a table, from the library's own specs.</summary>
internal sealed class ZooCommand(IAnsiConsole console) : Command<ZooCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--image-size")]
        [Description("Input size the FLOPs are counted at (default 224).")]
        [DefaultValue(224)]
        public int ImageSize { get; init; } = 224;
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var table = new Table().AddColumns("model", "depths", "widths", "group width", "SE", "params (M)", "GFLOPs");
        foreach (var spec in RegNetSpec.All)
            table.AddRow(spec.Name, string.Join(",", spec.StageDepths), string.Join(",", spec.StageWidths),
                string.Join(",", spec.StageGroupWidths.Distinct()), spec.HasSqueezeExcitation ? "yes" : "no",
                $"{spec.ParameterCount() / 1e6:F1}", $"{spec.Flops(settings.ImageSize) / 1e9:F2}");
        console.Write(table);
        return 0;
    }
}
