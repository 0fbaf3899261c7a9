using System.Globalization;
using System.Text.RegularExpressions;

namespace RegNetML.Tool.Sweeps;

/// <summary>One searched hyperparameter: a log or linear range, or a list of choices, named like its train option.</summary>
internal sealed partial record SearchDimension(string Name, string Kind, double[] Values)
{
    /// <summary>The train options a sweep may search (each is passed to regnet train as --name value).</summary>
    public static readonly string[] Searchable = { "lr", "weight-decay", "mixup", "area-factor", "label-smoothing", "warmup-epochs" };

    /// <summary>Parses <c>name=log:LOW..HIGH</c>, <c>name=lin:LOW..HIGH</c> or <c>name=choice:A,B,C</c>.</summary>
    public static SearchDimension Parse(string text)
    {
        var m = Syntax().Match(text.Trim());
        if (!m.Success)
            throw new UserError($"--param {text}: write name=log:LOW..HIGH, name=lin:LOW..HIGH or name=choice:A,B,C (e.g. lr=log:1e-4..1e-1).");
        string name = m.Groups["name"].Value, kind = m.Groups["kind"].Value;
        if (!Searchable.Contains(name))
            throw new UserError($"--param {text}: {name} cannot be searched; use one of {string.Join(", ", Searchable)}.");
        var values = (kind == "choice" ? m.Groups["list"].Value.Split(',') : new[] { m.Groups["low"].Value, m.Groups["high"].Value })
            .Select(v => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d)
                ? d : throw new UserError($"--param {text}: '{v}' is not a number."))
            .ToArray();
        if (kind != "choice" && !(values[0] < values[1]))
            throw new UserError($"--param {text}: the range must go from low to high ({values[0]} is not below {values[1]}).");
        if (kind == "log" && values[0] <= 0)
            throw new UserError($"--param {text}: a log range must be positive; use lin: for a range that starts at 0.");
        return new SearchDimension(name, kind, values);
    }

    /// <summary>A value drawn from the dimension, rounded to 4 significant digits (the value shown is the value trained).</summary>
    public double Sample(Random random)
    {
        double v = Kind switch
        {
            "choice" => Values[random.Next(Values.Length)],
            "log" => Math.Exp(Math.Log(Values[0]) + random.NextDouble() * (Math.Log(Values[1]) - Math.Log(Values[0]))),
            _ => Values[0] + random.NextDouble() * (Values[1] - Values[0]),
        };
        return double.Parse(v.ToString("G4", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    }

    /// <summary>The canonical text of the dimension (what the state file compares on resume).</summary>
    public override string ToString() => Kind == "choice"
        ? $"{Name}=choice:{string.Join(",", Values.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))}"
        : FormattableString.Invariant($"{Name}={Kind}:{Values[0]:R}..{Values[1]:R}");

    [GeneratedRegex(@"^(?<name>[a-z-]+)=(?:(?<kind>log|lin):(?<low>[^.]+(?:\.[^.]+)?)\.\.(?<high>.+)|(?<kind>choice):(?<list>.+))$")]
    private static partial Regex Syntax();
}
