using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML.RegNet;

namespace RegNetML.Tool.Plotting;

/// <summary>The charts of runs, drawn by ScottPlot (<see cref="PlotsLoadContext"/>): one run's curves.png and the
/// overlaid curves of the runs a comparison report shows. The x axis is epochs, so runs of different batch sizes line up.</summary>
internal static class RunCharts
{
    private const int PanelWidth = 640, PanelHeight = 420, ComparisonWidth = 960, ComparisonHeight = 520;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private sealed record Series(string Label, double[] X, double[] Y, int Color, bool Dashed, bool Markers);

    private sealed record Panel(string Title, string XLabel, string YLabel, IReadOnlyList<Series> Series, bool LegendBelow = false);

    /// <summary>Loss, top-1 and learning rate of one run, training and validation, as PNG bytes.</summary>
    public static byte[] Curves(RegNetRun run)
    {
        var steps = Of(run, MetricsPhase.TrainSteps);
        var validation = Of(run, MetricsPhase.Validation);
        var panels = new[]
        {
            new Panel("loss", "epoch", "cross-entropy", new[] { Line("train", run, steps, m => m.Loss, 0), Line("validation", run, validation, m => m.Loss, 1, markers: true) }),
            new Panel("top-1 accuracy", "epoch", "top-1 (%)", new[] { Line("train", run, steps, Top1, 0), Line("validation", run, validation, Top1, 1, markers: true) }),
            new Panel("learning rate", "epoch", "learning rate", new[] { Line("learning rate", run, steps, m => m.LearningRate, 2) }),
        };
        return Render(panels, PanelWidth, PanelHeight);
    }

    /// <summary>Validation top-1, loss (validation solid, training epochs dashed) and learning rate of several runs
    /// overlaid, one colour per run, as PNG bytes: one image per panel.</summary>
    public static IReadOnlyList<(string Title, byte[] Png)> Comparison(IReadOnlyList<RegNetRun> runs)
    {
        var top1 = new List<Series>();
        var loss = new List<Series>();
        var lr = new List<Series>();
        for (int i = 0; i < runs.Count; i++)
        {
            var run = runs[i];
            top1.Add(Line(run.Name, run, Of(run, MetricsPhase.Validation), Top1, i, markers: true));
            loss.Add(Line(run.Name, run, Of(run, MetricsPhase.Validation), m => m.Loss, i, markers: true));
            loss.Add(Line("", run, Of(run, MetricsPhase.TrainEpoch), m => m.Loss, i) with { Dashed = true });
            lr.Add(Line(run.Name, run, Of(run, MetricsPhase.TrainSteps), m => m.LearningRate, i));
        }
        return new[]
        {
            new Panel("validation top-1 accuracy", "epoch", "top-1 (%)", top1, LegendBelow: true),
            new Panel("loss (solid: validation, dashed: training)", "epoch", "cross-entropy", loss, LegendBelow: true),
            new Panel("learning rate", "epoch", "learning rate", lr, LegendBelow: true),
        }.Select(p => (p.Title, Render(new[] { p }, ComparisonWidth, ComparisonHeight))).ToList();
    }

    /// <summary>Writes <paramref name="run"/>'s curves.png (through a temporary file, so a reader never sees half an image).</summary>
    public static void WriteCurves(RegNetRun run) => ToolFiles.WriteAtomically(Path.Combine(run.Path, "curves.png"), Curves(run));

    private static byte[] Render(IReadOnlyList<Panel> panels, int width, int height) =>
        PlotsLoadContext.RenderPng(JsonSerializer.Serialize(panels, Json), width, height);

    private static double Top1(RegNetTrainingMetrics m) => 100 * m.Accuracy;

    private static List<RegNetTrainingMetrics> Of(RegNetRun run, MetricsPhase phase) => run.Metrics.Where(m => m.Phase == phase).ToList();

    private static Series Line(string label, RegNetRun run, List<RegNetTrainingMetrics> records, Func<RegNetTrainingMetrics, double> value, int color, bool markers = false) =>
        new(label, records.Select(m => EpochOf(run, m)).ToArray(), records.Select(value).ToArray(), color, Dashed: false, markers);

    // Epoch and validation records sit at the end of their epoch; step records at their fraction of the epochs.
    private static double EpochOf(RegNetRun run, RegNetTrainingMetrics m) =>
        m.Phase == MetricsPhase.TrainSteps && StepsPerEpoch(run) is { } perEpoch ? m.Step / perEpoch : m.Epoch + 1;

    private static double? StepsPerEpoch(RegNetRun run)
    {
        if (run.Metrics.FirstOrDefault(m => m.Phase == MetricsPhase.TrainEpoch) is { } end) return end.Step / (double)(end.Epoch + 1);
        long? rows = (long?)run.Config["training_rows"];
        int? batch = (int?)run.Config["BatchSize"];
        return rows is > 0 && batch is > 0 ? Math.Ceiling(rows.Value / (double)batch.Value) : null;
    }
}
