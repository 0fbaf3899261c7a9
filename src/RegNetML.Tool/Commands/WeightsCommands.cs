using System.ComponentModel;
using Microsoft.ML.RegNet;
using RegNetML.Tool.Scoring;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RegNetML.Tool.Commands;

/// <summary>The input of <c>regnet weights inspect|convert</c>.</summary>
public class WeightsSettings : CommandSettings
{
    [CommandArgument(0, "<file>")]
    [Description("A weight file: Keras .h5, PyTorch .pth/.pt/.pyth/.bin, safetensors, *.regnet.safetensors, a checkpoint or a model.zip.")]
    public string File { get; set; } = "";

    [CommandOption("--arch <NAME>")]
    [Description("Architecture, for files that hold only tensors (PyTorch, plain safetensors).")]
    public string? Arch { get; set; }

    [CommandOption("--classes <N>")]
    [Description("Classifier size, with --arch (default 1000); a file with another count gets a re-initialised classifier.")]
    public int? Classes { get; set; }
}

/// <summary><c>regnet weights inspect</c>: what a weight file holds and how it loads.</summary>
internal sealed class WeightsInspectCommand(IAnsiConsole console) : Command<WeightsSettings>
{
    public override int Execute(CommandContext context, WeightsSettings settings, CancellationToken cancellation)
    {
        using var network = NetworkFile.Load(settings.File, settings.Arch, settings.Classes);
        WeightsReport.Write(console, network);
        return 0;
    }
}

/// <summary><c>regnet weights convert</c>: any readable format to any writable one, with the load report.</summary>
internal sealed class WeightsConvertCommand(IAnsiConsole console) : Command<WeightsConvertCommand.Settings>
{
    public sealed class Settings : WeightsSettings
    {
        [CommandArgument(1, "<output>")]
        [Description("*.regnet.safetensors (own format), *.safetensors (timm layout), *.onnx or *.zip (ML.NET model).")]
        public string Output { get; set; } = "";
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        using var network = NetworkFile.Load(settings.File, settings.Arch, settings.Classes);
        WeightsReport.Write(console, network);
        NetworkFile.Write(network, settings.Output);
        console.WriteLine($"wrote {Path.GetFullPath(settings.Output)}");
        return 0;
    }
}

internal static class WeightsReport
{
    public static void Write(IAnsiConsole console, LoadedNetwork network)
    {
        var r = network.Report;
        var table = new Table().AddColumns("", "").HideHeaders();
        table.AddRow("file", Markup.Escape(r.Path));
        table.AddRow("format, layout", Markup.Escape($"{r.Format}, {r.Layout}"));
        table.AddRow("architecture", Markup.Escape($"{network.Model.Spec.Name} (depths {string.Join(",", network.Model.Spec.StageDepths)}, widths {string.Join(",", network.Model.Spec.StageWidths)})"));
        table.AddRow("classes", Markup.Escape($"{network.Model.NumberOfClasses}: {string.Join(", ", network.ClassNames.Take(8))}{(network.ClassNames.Count > 8 ? ", …" : "")}"));
        table.AddRow("tensors", Markup.Escape(r.Tensors.ToString()));
        table.AddRow("classifier", r.Classifier.ToString());
        table.AddRow("preprocessing", Markup.Escape($"{r.Preprocessing.Normalization.Order}, scale {r.Preprocessing.Normalization.Scale}, mean {string.Join("/", r.Preprocessing.Normalization.Mean)}, std {string.Join("/", r.Preprocessing.Normalization.Std)}, {r.Preprocessing.ImageSize} px, crop {r.Preprocessing.CropFraction}"));
        table.AddRow("padding", r.Padding.ToString());
        foreach (var note in r.Notes) table.AddRow("note", Markup.Escape(note));
        foreach (var (key, value) in r.Metadata.Where(m => !m.Key.StartsWith("regnetml.", StringComparison.Ordinal)).Take(10))
            table.AddRow("metadata", Markup.Escape($"{key} = {value}"));
        console.Write(table);
    }
}
