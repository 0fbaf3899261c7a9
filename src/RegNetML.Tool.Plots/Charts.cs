using System.Text.Json;
using ScottPlot;

namespace RegNetML.Tool.Plots;

/// <summary>
/// Draws panels of line charts side by side into one PNG. Called by the tool through reflection from another load
/// context, so the interface is plain types: the panels as JSON text in, PNG bytes out.
/// </summary>
public static class Charts
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>Renders <paramref name="panelsJson"/> (an array of panels: title, xLabel, yLabel, series of label, x, y,
    /// color index, dashed, markers; legendBelow) as one PNG, each panel <paramref name="panelWidth"/> × <paramref name="height"/> pixels.</summary>
    public static byte[] RenderPng(string panelsJson, int panelWidth, int height)
    {
        var panels = JsonSerializer.Deserialize<Panel[]>(panelsJson, Json) ?? throw new ArgumentException("No panels.", nameof(panelsJson));
        if (panels.Length == 0) throw new ArgumentException("No panels.", nameof(panelsJson));
        // A new Multiplot holds one empty plot; it starts from the first panel instead.
        var multiplot = new Multiplot(Draw(panels[0])) { Layout = new ScottPlot.MultiplotLayouts.Columns() };
        foreach (var panel in panels.Skip(1)) multiplot.AddPlot(Draw(panel));
        return multiplot.Render(panelWidth * panels.Length, height).GetImageBytes(ImageFormat.Png);
    }

    private static Plot Draw(Panel panel)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        foreach (var series in panel.Series)
        {
            // Gaps (a NaN loss) are left out rather than drawn as zeros.
            var points = series.X.Zip(series.Y).Where(p => double.IsFinite(p.First) && double.IsFinite(p.Second)).ToArray();
            if (points.Length == 0) continue;
            var scatter = plot.Add.Scatter(points.Select(p => p.First).ToArray(), points.Select(p => p.Second).ToArray(), palette.GetColor(series.Color));
            // An empty label keeps the series out of the legend (the title explains it).
            scatter.LegendText = series.Label;
            scatter.LineWidth = 2;
            scatter.MarkerSize = series.Markers ? 6 : 0;
            if (series.Dashed) scatter.LinePattern = LinePattern.Dashed;
        }
        plot.Title(panel.Title);
        plot.XLabel(panel.XLabel);
        plot.YLabel(panel.YLabel);
        // Many runs' names would cover the lines inside the data area.
        if (panel.LegendBelow) plot.ShowLegend(Edge.Bottom);
        else plot.ShowLegend(Alignment.LowerLeft);
        return plot;
    }

    private sealed record Panel(string Title, string XLabel, string YLabel, Series[] Series, bool LegendBelow);

    private sealed record Series(string Label, double[] X, double[] Y, int Color, bool Dashed, bool Markers);
}
