using Microsoft.ML.RegNet;

namespace RegNetML.Tool.Training;

/// <summary><c>--arch</c> or <c>--spec</c> as a <see cref="RegNetSpec"/>, with errors that say what to type instead.</summary>
internal static class Architecture
{
    public static RegNetSpec Resolve(string? arch, string? specFile)
    {
        if (specFile is not null)
        {
            if (arch is not null) throw new UserError("Give --arch or --spec, not both.");
            if (!File.Exists(specFile)) throw new UserError($"--spec {specFile}: no such file. Give a JSON file describing the architecture.");
            try
            {
                return RegNetSpec.FromJson(File.ReadAllText(specFile));
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidDataException or ArgumentException)
            {
                throw new UserError($"{specFile} is not a valid RegNet spec ({e.Message}). Expected {{\"depth\", \"w0\", \"wa\", \"wm\", \"group_width\", \"bottleneck_ratio\", \"se_ratio\", \"rounding\", \"name\"}}.");
            }
        }
        string name = arch ?? "X002";
        if (!RegNetZoo.TryFind(name, out _))
            throw new UserError($"Unknown architecture '{name}'. Use one of {RegNetZoo.ValidNames} (see 'regnet zoo'), or --spec <json file> for your own.");
        return RegNetSpec.FromName(name);
    }
}
