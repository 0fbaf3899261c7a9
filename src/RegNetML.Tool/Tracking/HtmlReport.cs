using System.Net;
using System.Text;
using Microsoft.ML.RegNet;
using RegNetML.Tool.Plotting;

namespace RegNetML.Tool.Tracking;

/// <summary>
/// The comparison report: one HTML file that needs nothing else (charts inlined as base64 PNG, styles inline, no
/// scripts, no fonts or links to fetch), so it opens offline, mails as one attachment and archives with the runs.
/// </summary>
internal static class HtmlReport
{
    public static string Build(IReadOnlyList<RegNetRun> runs, DateTime generated)
    {
        var html = new StringBuilder();
        html.AppendLine("<!DOCTYPE html>");
        html.AppendLine("<html lang=\"en\"><head><meta charset=\"utf-8\">");
        html.AppendLine($"<title>RegNet runs: {runs.Count} compared</title>");
        html.AppendLine("""
            <style>
            body { font-family: sans-serif; margin: 1.5em; color: #222; }
            table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
            th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; font-size: 0.9em; }
            th { background: #eee; }
            tr.differs td { background: #fff4d6; }
            img { max-width: 100%; margin: 0.25em 0; border: 1px solid #ddd; }
            .note { color: #666; font-size: 0.85em; }
            </style></head><body>
            """);
        html.AppendLine($"<h1>RegNet runs: {runs.Count} compared</h1>");
        html.AppendLine($"<p class=\"note\">Generated {E(generated.ToString("yyyy-MM-dd HH:mm"))} by regnet compare.</p>");
        AppendSummary(html, runs);
        html.AppendLine("<h2>Curves</h2>");
        foreach (var (title, png) in RunCharts.Comparison(runs))
            html.AppendLine($"<figure><img id=\"chart-{Id(title)}\" alt=\"{E(title)}\" src=\"data:image/png;base64,{Convert.ToBase64String(png)}\"></figure>");
        AppendHyperparameters(html, runs);
        html.AppendLine("</body></html>");
        return html.ToString();
    }

    private static void AppendSummary(StringBuilder html, IReadOnlyList<RegNetRun> runs)
    {
        html.AppendLine("<h2>Runs</h2><table id=\"runs\"><thead><tr><th>run</th><th>date</th><th>arch</th><th>epochs</th><th>best top-1</th><th>wall</th><th>status</th><th>folder</th></tr></thead><tbody>");
        foreach (var run in runs)
            html.AppendLine("<tr>" + string.Concat(new[]
            {
                run.Name, RunFacts.Date(run), run.Architecture, RunFacts.Epochs(run), RunFacts.Top1(run), RunFacts.Wall(run),
                RunFacts.Status(run) + (run.StatusDetail is { } d ? $" ({d})" : ""), run.Path,
            }.Select(c => $"<td>{E(c)}</td>")) + "</tr>");
        html.AppendLine("</tbody></table>");
    }

    // Every hyperparameter, the ones that differ first and highlighted: a difference is what a comparison looks for.
    private static void AppendHyperparameters(StringBuilder html, IReadOnlyList<RegNetRun> runs)
    {
        var differing = RunFacts.DifferingHyperparameters(runs);
        var same = RunFacts.AllHyperparameters(runs).Except(differing);
        html.AppendLine($"<h2>Hyperparameters</h2><p class=\"note\">{differing.Count} differ (highlighted, first); the others are the same in every run.</p>");
        html.Append("<table id=\"hyperparameters\"><thead><tr><th>hyperparameter</th>");
        foreach (var run in runs) html.Append($"<th>{E(run.Name)}</th>");
        html.AppendLine("</tr></thead><tbody>");
        foreach (var key in differing.Concat(same))
        {
            html.Append(differing.Contains(key) ? "<tr class=\"differs\">" : "<tr>");
            html.Append($"<td>{E(key)}</td>");
            foreach (var run in runs) html.Append($"<td>{E(RunFacts.Value(run, key))}</td>");
            html.AppendLine("</tr>");
        }
        html.AppendLine("</tbody></table>");
    }

    private static string E(string text) => WebUtility.HtmlEncode(text);

    private static string Id(string title) => new string(title.TakeWhile(c => c != '(').Select(c => char.IsLetterOrDigit(c) ? c : '-').ToArray()).Trim('-');
}
