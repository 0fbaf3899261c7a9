using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet;

/// <summary>How a run stands, from its status.json.</summary>
public enum RegNetRunStatus
{
    /// <summary>The run folder has no status.json (written before the trainer recorded one): nothing is known.</summary>
    Unknown,
    /// <summary>A process is training it now (or it runs on another host, which cannot be checked from here).</summary>
    Running,
    /// <summary>Training ended normally: all epochs, or early stopping.</summary>
    Finished,
    /// <summary>Training stopped with an error; <see cref="RegNetRun.StatusDetail"/> holds its message.</summary>
    Failed,
    /// <summary>Cancelled, or its process was killed or crashed; resume it from its folder.</summary>
    Interrupted,
}

/// <summary>
/// A run folder read back (<c>&lt;workspace&gt;/runs/&lt;yyyyMMdd-HHmmss&gt;-&lt;arch&gt;/</c> as written by a
/// <c>Fit</c> with <see cref="RegNetTrainer.Options.WorkspacePath"/>): its configuration, metrics history and status.
/// A snapshot: a running run is read as far as it has got.
/// </summary>
public sealed class RegNetRun
{
    // Keys of config.json that describe the machine, the files or the bookkeeping rather than what is trained.
    private static readonly HashSet<string> NotHyperparameters = new(StringComparer.Ordinal)
    {
        "architecture", "Architecture", "started", "resumes", "spec", "stages", "parameters", "classes", "torch_threads",
        "convolution_self_test", "native_allocator", "WorkspacePath", "ResumeFrom", "ResumeFromPreviousCheckpoint",
        "WorkerThreads", "NumberOfThreads", "LogEveryNSteps", "CheckpointEveryNSteps", "LabelColumnName", "ImageColumnName",
        "ScoreColumnName", "PredictedLabelColumnName", "Device", "DataParallel",
    };

    private RegNetRun(string path, JsonObject config, IReadOnlyList<RegNetTrainingMetrics> metrics, RunStatusRecord? status)
    {
        Path = path;
        Config = config;
        Metrics = metrics;
        Status = status?.Status ?? RegNetRunStatus.Unknown;
        StatusDetail = status?.Detail;
        WallTime = status is null ? null : TimeSpan.FromSeconds(status.WallSeconds);
        Architecture = (string?)config["architecture"] ?? (string?)config["Architecture"] ?? "?";
        Started = DateTime.TryParse((string?)config["started"], CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var s) ? s : null;
        MaxEpochs = (int?)config["MaxEpochs"];
        var hyperparameters = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in config)
            if (!NotHyperparameters.Contains(key)) Flatten(key, value, hyperparameters);
        Hyperparameters = hyperparameters;
        Epochs = metrics.Where(m => m.Phase == MetricsPhase.TrainEpoch).Select(m => m.Epoch).Distinct().Count();
        var best = metrics.Where(m => m.Phase == MetricsPhase.Validation).MaxBy(m => m.Accuracy);
        BestTop1 = best?.Accuracy;
        BestEpoch = best?.Epoch;
    }

    /// <summary>The run folder.</summary>
    public string Path { get; }

    /// <summary>The folder's name: start date and time, then architecture (<c>20261129-021500-X002</c>).</summary>
    public string Name => System.IO.Path.GetFileName(Path.TrimEnd(System.IO.Path.DirectorySeparatorChar));

    /// <summary>The architecture's name (a zoo name such as <c>RegNetX002</c>, or a custom spec's name).</summary>
    public string Architecture { get; }

    /// <summary>When training first started (local time), from config.json; null when it does not say.</summary>
    public DateTime? Started { get; }

    /// <summary>config.json as written by the trainer: every option, the resolved architecture, the data and the machine.</summary>
    public JsonObject Config { get; }

    /// <summary>The options that shape what is trained, flattened to text (<c>LearningRate</c>, <c>augmentation.AreaFactor</c>,
    /// <c>mixing.MixupAlpha</c>, …), sorted by key; machine, file and bookkeeping entries of config.json are left out.</summary>
    public IReadOnlyDictionary<string, string> Hyperparameters { get; }

    /// <summary>Every metrics record of metrics.jsonl, in order (a line cut short by a killed process is left out).</summary>
    public IReadOnlyList<RegNetTrainingMetrics> Metrics { get; }

    /// <summary>Training epochs completed.</summary>
    public int Epochs { get; }

    /// <summary>The epochs the run was configured for (<see cref="RegNetTrainer.Options.MaxEpochs"/>); null when config.json lacks it.</summary>
    public int? MaxEpochs { get; }

    /// <summary>The best validation top-1 accuracy (a fraction) of any epoch; null without validation records.</summary>
    public double? BestTop1 { get; }

    /// <summary>The epoch (from 0) of <see cref="BestTop1"/>; null without validation records.</summary>
    public int? BestEpoch { get; }

    /// <summary>Time spent training, summed over the run and its resumes (a killed process's last epoch is not counted;
    /// a running run's counts up to now); null without status.json.</summary>
    public TimeSpan? WallTime { get; }

    /// <summary>Running, finished, failed or interrupted (a killed process's run reads as interrupted).</summary>
    public RegNetRunStatus Status { get; }

    /// <summary>Why it ended (<c>completed</c>, early stopping, the error's message, …); null while running or unknown.</summary>
    public string? StatusDetail { get; }

    /// <summary>Reads the run folder at <paramref name="path"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">It is not a run folder (no config.json) or its config.json or status.json does not parse.</exception>
    public static RegNetRun Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!Directory.Exists(path))
            throw new DirectoryNotFoundException($"Run folder {path} does not exist. Pass a folder under <workspace>/runs/.");
        string configPath = System.IO.Path.Combine(path, "config.json");
        if (!File.Exists(configPath))
            throw new InvalidDataException($"{path} is not a run folder: it has no config.json. Pass a folder under <workspace>/runs/ written by a training run.");
        JsonObject config;
        try
        {
            config = JsonNode.Parse(ReadShared(configPath)) as JsonObject ?? throw new JsonException("not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{configPath} is not valid JSON ({e.Message}); the run cannot be read. Move the folder out of the workspace.", e);
        }
        return new RegNetRun(System.IO.Path.GetFullPath(path), config, ReadMetrics(path), RunStatusFile.Read(path));
    }

    /// <summary>Every run under <c><paramref name="workspace"/>/runs/</c>, oldest first (folders without config.json are not runs and are skipped).</summary>
    /// <exception cref="DirectoryNotFoundException">The workspace does not exist.</exception>
    public static IReadOnlyList<RegNetRun> List(string workspace)
    {
        ArgumentException.ThrowIfNullOrEmpty(workspace);
        if (!Directory.Exists(workspace))
            throw new DirectoryNotFoundException($"Workspace {workspace} does not exist. Pass the folder given as the workspace when training (it holds runs/).");
        string runs = System.IO.Path.Combine(workspace, "runs");
        if (!Directory.Exists(runs)) return Array.Empty<RegNetRun>();
        return Directory.GetDirectories(runs)
            .Where(d => File.Exists(System.IO.Path.Combine(d, "config.json")))
            .Select(Load)
            .OrderBy(r => r.Started ?? DateTime.MaxValue).ThenBy(r => r.Name, StringComparer.Ordinal)
            .ToList();
    }

    private static List<RegNetTrainingMetrics> ReadMetrics(string path)
    {
        string jsonl = System.IO.Path.Combine(path, "metrics.jsonl");
        if (!File.Exists(jsonl)) return new List<RegNetTrainingMetrics>();
        return ReadShared(jsonl).Split('\n').Select(RunDirectory.ParseRecord).OfType<RegNetTrainingMetrics>().ToList();
    }

    // The trainer may be appending to the file while it is read.
    private static string ReadShared(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static void Flatten(string key, JsonNode? value, IDictionary<string, string> into)
    {
        switch (value)
        {
            case JsonObject o:
                foreach (var (k, v) in o) Flatten($"{key}.{k}", v, into);
                break;
            case JsonArray a:
                into[key] = string.Join(",", a.Select(Text));
                break;
            default:
                into[key] = Text(value);
                break;
        }
    }

    private static string Text(JsonNode? value) => value switch
    {
        null => "null",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => value.ToJsonString(),
    };

    /// <summary>The folder name, architecture, status and best top-1.</summary>
    public override string ToString() =>
        FormattableString.Invariant($"{Name} ({Architecture}, {Status.ToString().ToLowerInvariant()}, best top-1 {(BestTop1 is { } b ? b.ToString("P2", CultureInfo.InvariantCulture) : "none")})");
}
