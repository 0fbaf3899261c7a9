using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microsoft.ML.RegNet.Training;

/// <summary>
/// status.json of a run folder: running (with the process that trains it), finished, failed or interrupted, and the
/// wall time spent training so far. Rewritten atomically at the start, after every epoch and at the end, so a reader
/// never sees half a file; a run whose process died without writing its end is recognised by its dead process id.
/// </summary>
internal sealed class RunStatusFile
{
    public const string FileName = "status.json";

    private readonly string _path;
    private readonly double _earlierSeconds;
    private readonly DateTime _segmentStart = DateTime.UtcNow;
    private readonly string _started;

    /// <summary>Marks the run folder running in this process; a resume keeps the first start and the wall time already spent.</summary>
    public RunStatusFile(string runFolder)
    {
        _path = Path.Combine(runFolder, FileName);
        var earlier = Read(runFolder);
        _earlierSeconds = earlier?.WallSeconds ?? 0;
        _started = earlier?.Started ?? DateTime.Now.ToString("O", CultureInfo.InvariantCulture);
        Write(RegNetRunStatus.Running, detail: null);
    }

    /// <summary>Refreshes the wall time of a running run.</summary>
    public void Heartbeat() => Write(RegNetRunStatus.Running, detail: null);

    /// <summary>Records how the run ended (finished, failed, interrupted) and why.</summary>
    public void End(RegNetRunStatus status, string detail) => Write(status, detail);

    private void Write(RegNetRunStatus status, string? detail)
    {
        using var process = Process.GetCurrentProcess();
        var json = new JsonObject
        {
            ["status"] = status.ToString().ToLowerInvariant(),
            ["detail"] = detail,
            ["started"] = _started,
            ["updated"] = DateTime.Now.ToString("O", CultureInfo.InvariantCulture),
            ["wall_seconds"] = _earlierSeconds + (DateTime.UtcNow - _segmentStart).TotalSeconds,
            ["pid"] = Environment.ProcessId,
            ["process_started"] = process.StartTime.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture),
            ["host"] = Environment.MachineName,
        };
        AtomicFile.Write(_path, s =>
        {
            using var writer = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
            json.WriteTo(writer);
        });
    }

    /// <summary>What status.json says, with a run marked running whose process is gone read as interrupted; null when
    /// the folder has no status.json (a run written before the file existed).</summary>
    public static RunStatusRecord? Read(string runFolder)
    {
        string path = Path.Combine(runFolder, FileName);
        if (!File.Exists(path)) return null;
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new JsonException("not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not valid JSON ({e.Message}). It is rewritten by the trainer; delete it to read the run without a status.", e);
        }
        if (!Enum.TryParse<RegNetRunStatus>((string?)json["status"], ignoreCase: true, out var status))
            throw new InvalidDataException($"{path} has no known \"status\" (running, finished, failed or interrupted). Delete the file to read the run without a status.");
        string? detail = (string?)json["detail"];
        double wall = (double?)json["wall_seconds"] ?? 0;
        if (status == RegNetRunStatus.Running && !StillRunning(json))
        {
            status = RegNetRunStatus.Interrupted;
            detail = $"the training process (pid {(int?)json["pid"]}) ended without recording an end: killed or crashed; resume it from its folder";
        }
        else if (status == RegNetRunStatus.Running && DateTime.TryParse((string?)json["updated"], CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var updated))
            wall += Math.Max(0, (DateTime.Now - updated).TotalSeconds);
        return new RunStatusRecord(status, detail, (string?)json["started"], wall);
    }

    // The recorded process is alive and is the same process (a pid can be reused after a reboot or wrap-around). A run
    // on another host cannot be checked from here and counts as running.
    private static bool StillRunning(JsonObject json)
    {
        if ((string?)json["host"] is { } host && host != Environment.MachineName) return true;
        if ((int?)json["pid"] is not { } pid) return false;
        try
        {
            using var process = Process.GetProcessById(pid);
            if (process.HasExited) return false;
            return !DateTime.TryParse((string?)json["process_started"], CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var started)
                || Math.Abs((process.StartTime.ToUniversalTime() - started.ToUniversalTime()).TotalSeconds) < 2;
        }
        // The process may end between the questions: then its start time cannot be read (Win32Exception on Linux too).
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}

/// <summary>One reading of status.json.</summary>
internal sealed record RunStatusRecord(RegNetRunStatus Status, string? Detail, string? Started, double WallSeconds);
