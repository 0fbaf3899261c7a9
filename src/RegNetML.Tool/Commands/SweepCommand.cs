using System.ComponentModel;
using System.Globalization;
using RegNetML.Tool.Sweeps;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RegNetML.Tool.Commands;

/// <summary><c>regnet sweep</c>: hyperparameter search (random or successive halving) whose trials are ordinary
/// <c>regnet train</c> runs, resumable from its state file after a crash.</summary>
internal sealed class SweepCommand(IAnsiConsole console) : Command<SweepCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<data>")]
        [Description("Training images, as for regnet train. Options after -- are passed to every trial's regnet train.")]
        public string Data { get; init; } = "";

        [CommandOption("--val <FOLDER|CSV>")]
        [Description("Validation images (the trials are ranked on them).")]
        public string? Val { get; init; }

        [CommandOption("--val-fraction <F>")]
        [Description("Validate on this fraction of the training images instead.")]
        public double? ValFraction { get; init; }

        [CommandOption("--param <SPEC>")]
        [Description("A searched option, repeatable: lr=log:1e-4..1e-1, mixup=choice:0,0.2, area-factor=lin:0.08..1. Searchable: lr, weight-decay, mixup, area-factor, label-smoothing, warmup-epochs.")]
        public string[] Parameters { get; init; } = Array.Empty<string>();

        [CommandOption("--trials <N>")]
        [Description("Configurations to try (default 8), the first being train's defaults unless --no-default.")]
        public int Trials { get; init; } = 8;

        [CommandOption("--method <METHOD>")]
        [Description("halving (default: successive halving, short budget first, the best 1/eta continue) or random.")]
        public string Method { get; init; } = "halving";

        [CommandOption("--epochs <N>")]
        [Description("The full budget in epochs: the last rung of halving, every trial of random search (default 10).")]
        public int Epochs { get; init; } = 10;

        [CommandOption("--min-epochs <N>")]
        [Description("The first rung's budget for halving (default 1).")]
        public int MinEpochs { get; init; } = 1;

        [CommandOption("--eta <N>")]
        [Description("Halving's reduction factor: 1/eta of the trials go on, with eta times the epochs (default 3).")]
        public int Eta { get; init; } = 3;

        [CommandOption("--seed <N>")]
        [Description("Seed of the configurations drawn and of every trial's training (default 1).")]
        public int Seed { get; init; } = 1;

        [CommandOption("--no-default")]
        [Description("Do not include train's default configuration as trial 0.")]
        public bool NoDefault { get; init; }

        [CommandOption("-w|--workspace <DIR>")]
        [Description("Where the trials' runs go (runs/) and the sweep's state (sweeps/<name>/). Default: the current folder.")]
        public string Workspace { get; init; } = Tracking.Workspace.Default;

        [CommandOption("--name <NAME>")]
        [Description("The sweep's name (default sweep): its state is <workspace>/sweeps/<name>/sweep.json; the same command again resumes it.")]
        public string Name { get; init; } = "sweep";
    }

    private static readonly string[] Reserved = { "--epochs", "--workspace", "--name", "--resume", "--seed", "--val", "--val-fraction" };

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        var (definition, space) = Define(settings, context.Remaining.Raw.ToArray());
        string folder = Path.GetFullPath(Path.Combine(settings.Workspace, "sweeps", settings.Name));
        Directory.CreateDirectory(folder);
        var state = SweepState.OpenOrCreate(Path.Combine(folder, "sweep.json"), definition, () => Draw(definition, space));
        var trials = new TrainTrials(folder, settings.Name, definition.TrainArguments);
        int done = state.Trials.Sum(t => t.Results.Count(r => r.Status != "running"));
        console.WriteLine($"sweep: {state.Path}: {definition.Trials} trials, {definition.Method}, budgets {string.Join(", ", SweepScheduler.Rungs(definition))} epochs" +
            (done > 0 ? $"; resuming with {done} trainings already done (not repeated)" : "") + ". The same command again resumes it.");
        var best = new SweepScheduler(state, trials.Train, (trial, result) => console.WriteLine(Describe(trial, result))).Run(cancellation);
        if (best is null)
        {
            console.WriteLine($"stopped: the finished trials are kept in {state.Path}; run the same command again to go on.");
            return TrainCommand.InterruptedExitCode;
        }
        SweepReport.Write(console, state, best.Value.Trial, best.Value.Result, trials);
        return 0;
    }

    private static (SweepDefinition, IReadOnlyList<SearchDimension>) Define(Settings s, string[] extra)
    {
        if (s.Method is not ("halving" or "random")) throw new UserError($"--method {s.Method}: use halving or random.");
        if (s.Trials < 1 || s.Epochs < 1 || s.MinEpochs < 1 || s.MinEpochs > s.Epochs || s.Eta < 2)
            throw new UserError("Use --trials ≥ 1, --epochs ≥ 1, 1 ≤ --min-epochs ≤ --epochs and --eta ≥ 2.");
        if (s.Parameters.Length == 0)
            throw new UserError($"Give the search space with --param, e.g. --param lr=log:1e-4..1e-1 (searchable: {string.Join(", ", SearchDimension.Searchable)}).");
        var space = s.Parameters.Select(SearchDimension.Parse).ToList();
        if (space.GroupBy(d => d.Name).FirstOrDefault(g => g.Count() > 1) is { } twice) throw new UserError($"--param {twice.Key} is given twice.");
        if (extra.FirstOrDefault(a => Reserved.Contains(a) || space.Any(d => a == "--" + d.Name)) is { } clash)
            throw new UserError($"{clash} after -- is set by the sweep itself; give it as a sweep option (or drop it from the search space).");
        bool imageNetLayout = Directory.Exists(Path.Combine(s.Data, "train")) && Directory.Exists(Path.Combine(s.Data, "val"));
        if (s.Val is null && s.ValFraction is null && !imageNetLayout)
            throw new UserError("A sweep ranks trials on validation data: give --val <folder|csv> or --val-fraction F.");
        var train = new List<string> { Path.GetFullPath(s.Data) };
        if (s.Val is not null) train.AddRange(new[] { "--val", Path.GetFullPath(s.Val) });
        if (s.ValFraction is { } f) train.AddRange(new[] { "--val-fraction", f.ToString("R", CultureInfo.InvariantCulture) });
        train.AddRange(extra);
        train.AddRange(new[] { "--workspace", Path.GetFullPath(s.Workspace), "--seed", s.Seed.ToString(CultureInfo.InvariantCulture) });
        var definition = new SweepDefinition(s.Method, s.Trials, s.MinEpochs, s.Epochs, s.Eta, s.Seed, !s.NoDefault,
            space.Select(d => d.ToString()).ToArray(), train.ToArray());
        return (definition, space);
    }

    // Drawn once when the sweep starts and stored, so a resume trains exactly the same configurations.
    private static List<Trial> Draw(SweepDefinition definition, IReadOnlyList<SearchDimension> space)
    {
        var random = new Random(definition.Seed);
        return Enumerable.Range(0, definition.Trials).Select(id => new Trial
        {
            Id = id,
            Parameters = definition.IncludeDefault && id == 0
                ? new SortedDictionary<string, double>(StringComparer.Ordinal)
                : new SortedDictionary<string, double>(space.ToDictionary(d => d.Name, d => d.Sample(random)), StringComparer.Ordinal),
        }).ToList();
    }

    private static string Describe(Trial trial, TrialResult result) =>
        $"trial {trial.Id} ({SweepReport.Parameters(trial)}), {result.Epochs} epochs: " + result.Status switch
        {
            "finished" => FormattableString.Invariant($"top-1 {result.Top1:P2}, loss {result.Loss:F4}; run: {result.Run}"),
            "failed" => $"failed: {result.Error}",
            _ => "stopped before the end (trained again on resume)",
        };
}
