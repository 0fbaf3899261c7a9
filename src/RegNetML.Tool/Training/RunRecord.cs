using System.Text.Json;

namespace RegNetML.Tool.Training;

/// <summary>
/// <c>regnet.json</c> in a run folder: the train command's own options (data paths made absolute, the run's name), so
/// that <c>regnet train --resume &lt;run&gt;</c> needs nothing else and other commands can show what a run was given.
/// </summary>
internal static class RunRecord
{
    public const string FileName = "regnet.json";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    public static void Write(string runFolder, TrainSettings settings)
    {
        var stored = Merge(new TrainSettings(), settings);
        stored.Resume = null;
        File.WriteAllText(Path.Combine(runFolder, FileName), JsonSerializer.Serialize(stored, Json));
    }

    public static TrainSettings? Read(string runFolder)
    {
        string path = Path.Combine(runFolder, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<TrainSettings>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new UserError($"{path} is not a valid regnet.json ({e.Message}). Restore it, or resume with the data and options given again.");
        }
    }

    /// <summary>What the run stored, with every option given now on top (the library refuses changes that would alter the resumed steps).</summary>
    public static TrainSettings ForResume(TrainSettings given)
    {
        string run = given.Resume!;
        if (!Directory.Exists(run))
            throw new UserError($"Cannot resume: {run} is not a folder. Pass a run folder (printed as 'run: …' by regnet train).");
        var stored = Read(run);
        if (stored is null && given.Data is null)
            throw new UserError($"{run} has no {FileName} (the run was stopped before regnet could write it). Give the data and the options of the original command again, with --resume.");
        var merged = stored is null ? given : Merge(stored, given);
        merged.Resume = run;
        return merged;
    }

    private static TrainSettings Merge(TrainSettings under, TrainSettings over)
    {
        var result = new TrainSettings();
        foreach (var property in typeof(TrainSettings).GetProperties())
            property.SetValue(result, property.GetValue(over) ?? property.GetValue(under));
        foreach (var path in new[] { nameof(TrainSettings.Data), nameof(TrainSettings.Val), nameof(TrainSettings.Spec), nameof(TrainSettings.Workspace) })
        {
            var property = typeof(TrainSettings).GetProperty(path)!;
            if (property.GetValue(result) is string value) property.SetValue(result, Path.GetFullPath(value));
        }
        return result;
    }
}
