using System.ComponentModel;
using System.Globalization;
using RegNetML.Tool.Data;
using RegNetML.Tool.Scoring;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RegNetML.Tool.Commands;

/// <summary><c>regnet evaluate</c>: a model on labelled images: top-1/top-5, log-loss, per class, confusion matrix.</summary>
internal sealed class EvaluateCommand(IAnsiConsole console) : Command<EvaluateCommand.Settings>
{
    /// <summary>Above this many classes the confusion matrix would not fit a terminal.</summary>
    private const int MaxConfusionClasses = 20;

    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<model>")]
        [Description("A run folder, a model.zip, or a weight file that names its architecture (own format, checkpoint, Keras .h5).")]
        public string Model { get; set; } = "";

        [CommandArgument(1, "<data>")]
        [Description("Labelled images: a folder with one sub-folder per class, a CSV/TSV of path,label, or an ImageNet folder (its val/).")]
        public string Data { get; set; } = "";
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        var model = ModelSource.Open(settings.Model);
        var data = ImageDataset.Load(settings.Data, "val");
        if (data.Items.Count == 0) throw new UserError($"{settings.Data} holds no images.");
        var index = model.ClassNames.Select((name, i) => (name, i)).ToDictionary(x => x.name, x => x.i, StringComparer.Ordinal);
        var unknown = data.ClassNames.Where(c => !index.ContainsKey(c)).ToList();
        if (unknown.Count > 0)
            throw new UserError($"{settings.Data} has classes the model does not know ({string.Join(", ", unknown.Take(5))}); the model's classes are {string.Join(", ", model.ClassNames.Take(10))}{(model.ClassNames.Count > 10 ? ", …" : "")}.");
        var evaluation = new Evaluation(model.Score(data.Items), data.Items.Select(i => index[i.Label]).ToList(), model.ClassNames.Count);

        console.WriteLine($"model: {model.Path}");
        console.WriteLine(Invariant($"{evaluation.Images} images: top-1 {evaluation.Top1:P2}, top-{evaluation.TopK} {evaluation.TopKAccuracy:P2}, log-loss {evaluation.LogLoss:F4}"));
        var present = Enumerable.Range(0, model.ClassNames.Count).Where(c => evaluation.Count(c) > 0 || evaluation.Predicted(c) > 0).ToList();
        var perClass = new Table().AddColumns("class", "images", "top-1 (recall)", "precision");
        foreach (int c in present)
            perClass.AddRow(Markup.Escape(model.ClassNames[c]), evaluation.Count(c).ToString(CultureInfo.InvariantCulture),
                Percent(evaluation.Recall(c)), Percent(evaluation.Precision(c)));
        console.Write(perClass);
        if (present.Count <= MaxConfusionClasses)
        {
            console.WriteLine("confusion matrix (rows: true class, columns: predicted):");
            console.Write(Confusion(evaluation, present, model.ClassNames));
        }
        else console.WriteLine($"(confusion matrix left out: {present.Count} classes)");
        return 0;
    }

    private static Table Confusion(Evaluation evaluation, List<int> classes, IReadOnlyList<string> names)
    {
        var table = new Table();
        table.AddColumn("true \\ predicted");
        foreach (int c in classes) table.AddColumn(new TableColumn(Markup.Escape(names[c])).RightAligned());
        foreach (int t in classes)
            table.AddRow(new[] { Markup.Escape(names[t]) }.Concat(classes.Select(p => evaluation.Confusion[t, p].ToString(CultureInfo.InvariantCulture))).ToArray());
        return table;
    }

    private static string Percent(double value) => double.IsNaN(value) ? "–" : value.ToString("P1", CultureInfo.InvariantCulture);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
