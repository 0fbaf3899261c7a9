namespace RegNetML.Tool.Sweeps;

/// <summary>
/// Random search and successive halving over the trials of a <see cref="SweepState"/>: every trial trains at the
/// smallest budget, the best 1/eta go on to the next (eta times larger) budget, and so on up to the full epochs;
/// random search is the one-rung case. Each training starts from scratch with its rung's epochs, so every result is an
/// ordinary complete run. Results already in the state are reused, which is what makes a resumed sweep skip them.
/// </summary>
internal sealed class SweepScheduler(SweepState state, Func<Trial, int, CancellationToken, TrialResult> train, Action<Trial, TrialResult> report)
{
    /// <summary>The budgets in epochs: max·eta^-(K-1) … max/eta, max with K = ⌊log_eta(max/min)⌋ + 1 (Hyperband's rungs).</summary>
    public static IReadOnlyList<int> Rungs(SweepDefinition d)
    {
        if (d.Method == "random") return new[] { d.MaxEpochs };
        int count = (int)Math.Floor(Math.Log((double)d.MaxEpochs / d.MinEpochs, d.Eta) + 1e-9) + 1;
        return Enumerable.Range(0, count)
            .Select(k => Math.Max(d.MinEpochs, (int)Math.Round(d.MaxEpochs / Math.Pow(d.Eta, count - 1 - k))))
            .Distinct().ToList();
    }

    /// <summary>Runs what is missing; returns the best trial of the last rung reached and its result, or null when cancelled.</summary>
    public (Trial Trial, TrialResult Result)? Run(CancellationToken cancellation)
    {
        var rungs = Rungs(state.Definition);
        var active = state.Trials.ToList();
        for (int k = 0; k < rungs.Count; k++)
        {
            foreach (var trial in active)
            {
                if (trial.At(rungs[k]) is not null) continue;
                if (cancellation.IsCancellationRequested) return null;
                var result = Train(trial, rungs[k], cancellation);
                if (result.Status == "running") return null;
            }
            var ranked = Rank(active, rungs[k]);
            if (k == rungs.Count - 1) return (ranked[0], ranked[0].At(rungs[k])!);
            active = ranked.Take((int)Math.Ceiling(active.Count / (double)state.Definition.Eta)).OrderBy(t => t.Id).ToList();
        }
        throw new InvalidOperationException("A sweep has at least one rung.");
    }

    /// <summary>Best first: finished before failed, then higher validation top-1, lower validation loss, earlier trial.</summary>
    public static List<Trial> Rank(IEnumerable<Trial> trials, int epochs) => trials
        .OrderBy(t => t.At(epochs)?.Status == "finished" ? 0 : 1)
        .ThenByDescending(t => t.At(epochs)?.Top1 ?? double.NegativeInfinity)
        .ThenBy(t => t.At(epochs)?.Loss ?? double.PositiveInfinity)
        .ThenBy(t => t.Id)
        .ToList();

    // Marked running in the state before it starts: a kill leaves it marked, and a resume trains it again.
    private TrialResult Train(Trial trial, int epochs, CancellationToken cancellation)
    {
        trial.Results.RemoveAll(r => r.Epochs == epochs && r.Status == "running");
        var started = new TrialResult { Epochs = epochs };
        trial.Results.Add(started);
        state.Save();
        var result = train(trial, epochs, cancellation);
        trial.Results[trial.Results.IndexOf(started)] = result;
        state.Save();
        report(trial, result);
        return result;
    }
}
