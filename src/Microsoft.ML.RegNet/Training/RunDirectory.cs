using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SkiaSharp;
using TorchSharp;

namespace Microsoft.ML.RegNet.Training;

/// <summary>
/// Everything one <c>Fit</c> leaves behind, in one folder <c>&lt;workspace&gt;/runs/&lt;yyyyMMdd-HHmmss&gt;-&lt;arch&gt;/</c>:
/// config.json, metrics.jsonl, metrics.csv, TensorBoard events, curves.png and checkpoints/{latest,previous,best}.ckpt.
/// </summary>
internal sealed class RunDirectory : IDisposable, IMetricsSink
{
    private readonly StreamWriter _jsonl;
    private readonly StreamWriter _csv;
    private readonly TorchSharp.Modules.SummaryWriter _tensorboard;
    private readonly List<RegNetTrainingMetrics> _history = new();
    // The last step of each tag the run's event files already hold: a resume replays the steps after its checkpoint,
    // and TensorBoard would show those twice (a new writer cannot take back what an old event file holds).
    private readonly Dictionary<string, long> _tensorboardWritten = new(StringComparer.Ordinal);

    public const string LatestCheckpointName = "latest.ckpt";
    public const string PreviousCheckpointName = "previous.ckpt";
    public const string BestCheckpointName = "best.ckpt";

    private RunDirectory(string path, long? keepRecords = null)
    {
        Path = path;
        Directory.CreateDirectory(CheckpointsPath);
        if (keepRecords is { } keep)
        {
            // A resumed run continues from its checkpoint: records written after it describe steps that run again.
            RemovedTemporaries = AtomicFile.RemoveInterruptedWrites(path).Concat(AtomicFile.RemoveInterruptedWrites(CheckpointsPath)).ToList();
            (DroppedRecords, _history) = TruncateMetrics(keep);
            _tensorboardWritten = TensorBoardEvents.LastSteps(TensorBoardPath);
        }
        RecordCount = _history.Count;
        _jsonl = new StreamWriter(System.IO.Path.Combine(path, "metrics.jsonl"), append: true, Encoding.UTF8) { AutoFlush = true };
        bool newCsv = !File.Exists(System.IO.Path.Combine(path, "metrics.csv"));
        _csv = new StreamWriter(System.IO.Path.Combine(path, "metrics.csv"), append: true, Encoding.UTF8) { AutoFlush = true };
        if (newCsv) _csv.WriteLine("phase,epoch,step,loss,accuracy,top5,learning_rate,images_per_second,images");
        _tensorboard = torch.utils.tensorboard.SummaryWriter(TensorBoardPath, createRunName: false);
        _status = new RunStatusFile(path);
    }

    private readonly RunStatusFile _status;

    /// <summary>Refreshes status.json's wall time (after each epoch).</summary>
    public void Heartbeat() => _status.Heartbeat();

    /// <summary>Records in status.json how training ended.</summary>
    public void End(RegNetRunStatus status, string detail) => _status.End(status, detail);

    /// <summary>Records a failure (or a cancellation that surfaced as an exception) in status.json.</summary>
    public void EndAfterError(Exception error)
    {
        try
        {
            _status.End(error is OperationCanceledException ? RegNetRunStatus.Interrupted : RegNetRunStatus.Failed, error.Message);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The training error is what the caller must see; a status.json left at "running" reads as interrupted
            // once this process has ended, which is still true enough.
        }
    }

    /// <summary>The run folder.</summary>
    public string Path { get; }

    public string CheckpointsPath => System.IO.Path.Combine(Path, "checkpoints");
    public string LatestCheckpoint => System.IO.Path.Combine(CheckpointsPath, LatestCheckpointName);
    /// <summary>The checkpoint latest.ckpt replaced: what to resume from when latest.ckpt is damaged.</summary>
    public string PreviousCheckpoint => System.IO.Path.Combine(CheckpointsPath, PreviousCheckpointName);
    public string BestCheckpoint => System.IO.Path.Combine(CheckpointsPath, BestCheckpointName);
    public string ConfigPath => System.IO.Path.Combine(Path, "config.json");
    public string TensorBoardPath => System.IO.Path.Combine(Path, "tensorboard");

    /// <summary>Metrics records in metrics.jsonl (one per step report, epoch and validation).</summary>
    public long RecordCount { get; private set; }

    /// <summary>Temporary files of interrupted writes that <see cref="Open"/> deleted.</summary>
    public IReadOnlyList<string> RemovedTemporaries { get; } = Array.Empty<string>();

    /// <summary>Metrics records <see cref="Open"/> dropped because they were written after the checkpoint resumed from.</summary>
    public int DroppedRecords { get; }

    /// <summary>The run folder of a checkpoint file inside <c>&lt;run&gt;/checkpoints/</c>, else null.</summary>
    public static string? OfCheckpoint(string checkpoint)
    {
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(checkpoint));
        if (folder is null || System.IO.Path.GetFileName(folder) != "checkpoints") return null;
        var run = System.IO.Path.GetDirectoryName(folder);
        return run is not null && File.Exists(System.IO.Path.Combine(run, "config.json")) ? run : null;
    }

    /// <summary>A new run folder under <paramref name="workspace"/>/runs, named by local date and time and architecture.</summary>
    public static RunDirectory Create(string workspace, string architecture, DateTime now)
    {
        string stamp = now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        string name = $"{stamp}-{Sanitize(architecture)}";
        string path = System.IO.Path.Combine(workspace, "runs", name);
        for (int i = 2; Directory.Exists(path); i++) path = System.IO.Path.Combine(workspace, "runs", $"{name}-{i}");
        return new RunDirectory(path);
    }

    /// <summary>Reopens an existing run folder to continue it from a checkpoint written after <paramref name="keepRecords"/>
    /// metrics records: later records are dropped (their steps run again) and temporary files of interrupted writes deleted.</summary>
    public static RunDirectory Open(string path, long keepRecords) =>
        Directory.Exists(path) ? new RunDirectory(path, keepRecords) : throw new DirectoryNotFoundException($"Run folder {path} does not exist.");

    private (int Dropped, List<RegNetTrainingMetrics> Kept) TruncateMetrics(long keep)
    {
        string jsonl = System.IO.Path.Combine(Path, "metrics.jsonl"), csv = System.IO.Path.Combine(Path, "metrics.csv");
        var kept = new List<RegNetTrainingMetrics>();
        int dropped = 0;
        if (File.Exists(jsonl))
        {
            var lines = File.ReadAllLines(jsonl);
            var keptLines = new List<string>();
            foreach (var line in lines)
            {
                // A line cut short by a killed process does not parse; it is dropped with the rest.
                if (kept.Count < keep && ParseRecord(line) is { } record) { kept.Add(record); keptLines.Add(line); }
                else dropped++;
            }
            if (dropped > 0) AtomicFile.Write(jsonl, s => WriteLines(s, keptLines));
        }
        if (File.Exists(csv))
        {
            var lines = File.ReadAllLines(csv);
            if (lines.Length > 0 && lines.Length - 1 > kept.Count)
                AtomicFile.Write(csv, s => WriteLines(s, lines.Take(kept.Count + 1)));
        }
        return (dropped, kept);
    }

    private static void WriteLines(Stream stream, IEnumerable<string> lines)
    {
        using var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true);
        foreach (var line in lines) writer.WriteLine(line);
    }

    /// <summary>One line of metrics.jsonl; null for a line that does not parse (cut short by a killed process).</summary>
    internal static RegNetTrainingMetrics? ParseRecord(string line)
    {
        try
        {
            var r = JsonNode.Parse(line);
            if (r is null || !Enum.TryParse<MetricsPhase>((string?)r["phase"], out var phase)) return null;
            return new RegNetTrainingMetrics(phase, (int)r["epoch"]!, (long)r["step"]!, (double?)r["loss"] ?? double.NaN, (double)r["accuracy"]!,
                (double)r["top5"]!, (double)r["learning_rate"]!, (double)r["images_per_second"]!, (long)r["images"]!);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NullReferenceException)
        {
            return null;
        }
    }

    /// <summary>config.json as written when the run started (null when absent).</summary>
    public JsonObject? ReadConfig() =>
        File.Exists(ConfigPath) ? JsonNode.Parse(File.ReadAllText(ConfigPath)) as JsonObject : null;

    public void WriteConfig(JsonObject config) =>
        AtomicFile.Write(ConfigPath, s =>
        {
            using var writer = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
            config.WriteTo(writer);
        });

    public void Record(RegNetTrainingMetrics m)
    {
        _history.Add(m);
        RecordCount++;
        _jsonl.WriteLine(JsonSerializer.Serialize(new
        {
            phase = m.Phase.ToString(), epoch = m.Epoch, step = m.Step, loss = Finite(m.Loss), accuracy = m.Accuracy, top5 = m.Top5Accuracy,
            learning_rate = m.LearningRate, images_per_second = m.ImagesPerSecond, images = m.Images,
        }));
        _csv.WriteLine(string.Join(',', m.Phase, m.Epoch, m.Step, F(m.Loss), F(m.Accuracy), F(m.Top5Accuracy), F(m.LearningRate), F(m.ImagesPerSecond), m.Images));
        string tag = m.Phase switch { MetricsPhase.Validation => "validation", MetricsPhase.TrainEpoch => "train_epoch", _ => "train" };
        AddScalar($"{tag}/loss", m.Loss, m.Step);
        AddScalar($"{tag}/accuracy", m.Accuracy, m.Step);
        AddScalar($"{tag}/top5", m.Top5Accuracy, m.Step);
        if (m.Phase == MetricsPhase.TrainSteps) AddScalar("learning_rate", m.LearningRate, m.Step);
    }

    // Steps the event files already hold for the tag are not written again (a resume replays them).
    private void AddScalar(string tag, double value, long step)
    {
        if (_tensorboardWritten.TryGetValue(tag, out var last) && step <= last) return;
        _tensorboard.add_scalar(tag, (float)value, (int)step);
    }

    /// <summary>Draws loss, accuracy and learning rate against steps into curves.png.</summary>
    public void PlotCurves()
    {
        const int width = 900, height = 300, margin = 30;
        using var surface = SKSurface.Create(new SKImageInfo(width * 3, height));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        var steps = _history.Where(h => h.Phase == MetricsPhase.TrainSteps).ToList();
        var validation = _history.Where(h => h.Phase == MetricsPhase.Validation).ToList();
        DrawPanel(canvas, 0, "loss", (steps, h => h.Loss, SKColors.SteelBlue), (validation, h => h.Loss, SKColors.OrangeRed));
        DrawPanel(canvas, width, "accuracy", (steps, h => h.Accuracy, SKColors.SteelBlue), (validation, h => h.Accuracy, SKColors.OrangeRed));
        DrawPanel(canvas, 2 * width, "learning rate", (steps, h => h.LearningRate, SKColors.SeaGreen));
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.Write(System.IO.Path.Combine(Path, "curves.png"), s => png.SaveTo(s));

        void DrawPanel(SKCanvas c, int left, string title, params (List<RegNetTrainingMetrics> Points, Func<RegNetTrainingMetrics, double> Value, SKColor Color)[] series)
        {
            using var text = new SKPaint { Color = SKColors.Black, TextSize = 16, IsAntialias = true };
            using var axis = new SKPaint { Color = SKColors.Gray, StrokeWidth = 1 };
            c.DrawText(title + " (blue: train, red: validation)", left + margin, 20, text);
            c.DrawLine(left + margin, height - margin, left + width - margin, height - margin, axis);
            c.DrawLine(left + margin, margin, left + margin, height - margin, axis);
            var all = series.SelectMany(s => s.Points.Select(p => (p.Step, V: s.Value(p)))).Where(p => double.IsFinite(p.V)).ToList();
            if (all.Count == 0) return;
            double maxStep = Math.Max(1, all.Max(p => p.Step)), lo = all.Min(p => p.V), hi = all.Max(p => p.V);
            if (hi - lo < 1e-12) hi = lo + 1;
            c.DrawText(hi.ToString("G3", CultureInfo.InvariantCulture), left + 2, margin + 5, text);
            c.DrawText(lo.ToString("G3", CultureInfo.InvariantCulture), left + 2, height - margin, text);
            foreach (var (points, value, color) in series)
            {
                using var paint = new SKPaint { Color = color, StrokeWidth = 2, IsAntialias = true, Style = SKPaintStyle.Stroke };
                using var path = new SKPath();
                bool first = true;
                foreach (var p in points.Where(p => double.IsFinite(value(p))))
                {
                    float x = (float)(left + margin + (width - 2 * margin) * p.Step / maxStep);
                    float y = (float)(height - margin - (height - 2 * margin) * (value(p) - lo) / (hi - lo));
                    if (first) path.MoveTo(x, y); else path.LineTo(x, y);
                    first = false;
                    if (points.Count < 50) c.DrawCircle(x, y, 3, paint);
                }
                c.DrawPath(path, paint);
            }
        }
    }

    public void Dispose()
    {
        _jsonl.Dispose();
        _csv.Dispose();
    }

    private static string F(double v) => v.ToString("G9", CultureInfo.InvariantCulture);
    private static double? Finite(double v) => double.IsFinite(v) ? v : null;
    private static string Sanitize(string s) => new(s.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' ? ch : '_').ToArray());
}
