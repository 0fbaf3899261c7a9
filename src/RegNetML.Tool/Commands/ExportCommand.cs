using System.ComponentModel;
using RegNetML.Tool.Scoring;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RegNetML.Tool.Commands;

/// <summary><c>regnet export</c>: a trained model as ONNX, model.zip, timm-layout safetensors or the own format.</summary>
internal sealed class ExportCommand(IAnsiConsole console) : Command<ExportCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<model>")]
        [Description("A run folder (its latest checkpoint), a checkpoint, a model.zip or a weight file.")]
        public string Model { get; set; } = "";

        [CommandOption("--onnx <FILE>")]
        [Description("ONNX: raw RGB pixels (0–255, N×3×H×W) in, normalised in the graph; logits and probabilities out, class names stored.")]
        public string? Onnx { get; set; }

        [CommandOption("--zip <FILE>")]
        [Description("An ML.NET model.zip: ImagePath column in, Score (class names as slot names) and PredictedLabel out.")]
        public string? Zip { get; set; }

        [CommandOption("--safetensors <FILE>")]
        [Description("Plain safetensors in timm's layout: timm.create_model(name, num_classes=n).load_state_dict(load_file(FILE)).")]
        public string? Safetensors { get; set; }

        [CommandOption("--regnet <FILE>")]
        [Description("The own format (*.regnet.safetensors): weights plus architecture, class names and preprocessing.")]
        public string? Regnet { get; set; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        var outputs = new[] { settings.Onnx, settings.Zip, settings.Safetensors, settings.Regnet }.Where(o => o is not null).Select(o => o!).ToList();
        if (outputs.Count == 0) throw new UserError("Say what to write: --onnx FILE, --zip FILE, --safetensors FILE and/or --regnet FILE.");
        if (settings.Safetensors is { } plain && plain.EndsWith(".regnet.safetensors", StringComparison.OrdinalIgnoreCase))
            throw new UserError($"--safetensors {plain}: that name is the own format's; use --regnet for it, or another name for plain safetensors.");
        if (settings.Regnet is { } own && !own.EndsWith(".regnet.safetensors", StringComparison.OrdinalIgnoreCase))
            throw new UserError($"--regnet {own}: name the file *.regnet.safetensors so that regnet recognises it.");
        if (settings.Zip is { } zip && !zip.EndsWith(".zip", StringComparison.OrdinalIgnoreCase))
            throw new UserError($"--zip {zip}: name the file *.zip.");
        if (settings.Onnx is { } onnx && !onnx.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new UserError($"--onnx {onnx}: name the file *.onnx.");

        using var network = NetworkFile.Load(Source(settings.Model));
        console.WriteLine($"read {network.Report.Path}: {network.Model.Spec.Name}, {network.Model.NumberOfClasses} classes");
        foreach (var note in network.Report.Notes) console.WriteLine($"note: {note}");
        foreach (var output in outputs)
        {
            NetworkFile.Write(network, output);
            console.WriteLine($"wrote {Path.GetFullPath(output)}");
        }
        return 0;
    }

    /// <summary>A run folder exports its latest checkpoint: real BatchNorm layers and the run's own preprocessing
    /// (its model.zip holds BatchNorm folded and keeps the preprocessing inside its graph).</summary>
    private static string Source(string model)
    {
        string checkpoint = Path.Combine(model, "checkpoints", "latest.ckpt");
        return Directory.Exists(model) && File.Exists(checkpoint) ? checkpoint : ModelSource.Resolve(model);
    }
}
