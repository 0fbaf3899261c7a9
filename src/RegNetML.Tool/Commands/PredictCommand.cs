using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using RegNetML.Tool.Data;
using RegNetML.Tool.Scoring;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RegNetML.Tool.Commands;

/// <summary><c>regnet predict</c>: image files or folders → the top-k classes of each, as a table or JSON lines.</summary>
internal sealed class PredictCommand(IAnsiConsole console) : Command<PredictCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<model>")]
        [Description("A run folder, a model.zip, or a weight file that names its architecture.")]
        public string Model { get; set; } = "";

        [CommandArgument(1, "<images>")]
        [Description("Image files or folders (searched recursively).")]
        public string[] Images { get; set; } = Array.Empty<string>();

        [CommandOption("-k|--top <K>")]
        [Description("Classes to show per image (default 5).")]
        [DefaultValue(5)]
        public int Top { get; set; } = 5;

        [CommandOption("--json")]
        [Description("One JSON object per line: {\"path\", \"top\": [{\"class\", \"probability\"}]}.")]
        public bool Json { get; set; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        if (settings.Top < 1) throw new UserError($"--top must be at least 1 (got {settings.Top}).");
        var files = settings.Images.SelectMany(Expand).ToList();
        if (files.Count == 0) throw new UserError($"No images in {string.Join(", ", settings.Images)}.");
        var model = ModelSource.Open(settings.Model);
        var scores = model.Score(files.Select(f => new ImageItem { ImagePath = f }).ToList());
        int k = Math.Min(settings.Top, model.ClassNames.Count);
        var table = new Table().AddColumns("image", $"top-{k} classes (probability)");
        for (int i = 0; i < files.Count; i++)
        {
            var top = scores[i].Select((p, c) => (Class: model.ClassNames[c], Probability: p)).OrderByDescending(x => x.Probability).Take(k).ToList();
            if (settings.Json)
                console.Raw(JsonSerializer.Serialize(new { path = files[i], top = top.Select(t => new { @class = t.Class, probability = t.Probability }) }));
            else
                table.AddRow(Markup.Escape(files[i]), Markup.Escape(string.Join(", ", top.Select(t => $"{t.Class} {t.Probability.ToString("P1", CultureInfo.InvariantCulture)}"))));
        }
        if (!settings.Json) console.Write(table);
        return 0;
    }

    private static IEnumerable<string> Expand(string path)
    {
        if (Directory.Exists(path))
            return Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                .Where(f => ImageDataset.ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order(StringComparer.Ordinal).Select(Path.GetFullPath);
        if (File.Exists(path)) return new[] { Path.GetFullPath(path) };
        throw new UserError($"{path} does not exist. Pass image files or folders.");
    }
}
