using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RegNetML.Tool.Sweeps;

/// <summary>What a sweep was asked to do; a resume must ask the same.</summary>
internal sealed record SweepDefinition(string Method, int Trials, int MinEpochs, int MaxEpochs, int Eta, int Seed, bool IncludeDefault,
    string[] Space, string[] TrainArguments);

/// <summary>One training of one trial at one budget: a rung of successive halving (random search has one rung).</summary>
internal sealed class TrialResult
{
    public int Epochs { get; set; }
    /// <summary>running (started, not ended: its process was killed; run again on resume), finished or failed.</summary>
    public string Status { get; set; } = "running";
    public string? Run { get; set; }
    public double? Top1 { get; set; }
    public double? Loss { get; set; }
    public string? Error { get; set; }
}

/// <summary>One configuration of the search space and its results by budget.</summary>
internal sealed class Trial
{
    public int Id { get; set; }
    /// <summary>Train option → value; empty for the default configuration.</summary>
    public SortedDictionary<string, double> Parameters { get; set; } = new(StringComparer.Ordinal);
    public List<TrialResult> Results { get; set; } = new();

    public TrialResult? At(int epochs) => Results.LastOrDefault(r => r.Epochs == epochs && r.Status != "running");
}

/// <summary>
/// sweep.json: the definition, every trial's configuration (drawn once, when the sweep starts) and every result, rewritten
/// atomically after each change, so a sweep killed at any moment resumes where it was and never repeats a finished training.
/// </summary>
internal sealed class SweepState
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public SweepDefinition Definition { get; set; } = null!;
    public List<Trial> Trials { get; set; } = new();

    [JsonIgnore]
    public string Path { get; private set; } = "";

    /// <summary>The state at <paramref name="path"/> when it exists (refused when it was started with another definition), else a new one.</summary>
    public static SweepState OpenOrCreate(string path, SweepDefinition definition, Func<List<Trial>> drawTrials)
    {
        if (File.Exists(path))
        {
            SweepState? state;
            try { state = JsonSerializer.Deserialize<SweepState>(File.ReadAllText(path), Json); }
            catch (JsonException e) { throw new UserError($"{path} is not a valid sweep state ({e.Message}). Move it away to start the sweep afresh."); }
            if (state?.Definition is null) throw new UserError($"{path} holds no sweep definition. Move it away to start the sweep afresh.");
            string then = JsonSerializer.Serialize(state.Definition, Json), now = JsonSerializer.Serialize(definition, Json);
            if (then != now)
                throw new UserError($"{path} belongs to a sweep started with other options:{Environment.NewLine}  then: {then.ReplaceLineEndings(" ")}{Environment.NewLine}" +
                    $"  now:  {now.ReplaceLineEndings(" ")}{Environment.NewLine}Repeat the original command to resume it, or give another --name.");
            state.Path = path;
            return state;
        }
        var created = new SweepState { Definition = definition, Trials = drawTrials(), Path = path };
        created.Save();
        return created;
    }

    public void Save()
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!);
        ToolFiles.WriteAtomically(Path, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(this, Json)));
    }
}
