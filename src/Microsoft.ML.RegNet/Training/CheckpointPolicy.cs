using System.Text.Json.Nodes;
using TorchSharp.Modules;

namespace Microsoft.ML.RegNet.Training;

/// <summary>
/// Which checkpoints a run keeps and when: latest (with the one it replaced as previous), best by one rule, and early
/// stopping. Never writes non-finite weights, and knows which checkpoint is the last good one.
/// </summary>
internal sealed class CheckpointPolicy
{
    private readonly RunDirectory? _run;
    private readonly EarlyStoppingOptions? _stopping;
    private readonly RegNetModel _model;
    private readonly OptimizerHelper _optimizer;

    public CheckpointPolicy(RunDirectory? run, EarlyStoppingOptions? stopping, RegNetModel model, OptimizerHelper optimizer)
    {
        _run = run;
        _stopping = stopping;
        _model = model;
        _optimizer = optimizer;
    }

    /// <summary>The configuration stored in every checkpoint header (null: none).</summary>
    public JsonObject? Config { get; set; }

    /// <summary>The newest checkpoint known to be complete and finite: written by this policy or resumed from.</summary>
    public (string Path, long Step)? LastGood { get; set; }

    /// <summary>The best value before any validation: every value improves on it.</summary>
    public static double InitialBest(EarlyStoppingOptions? stopping) => stopping?.Worst ?? double.NegativeInfinity;

    /// <summary>Writes latest.ckpt (the replaced one becomes previous.ckpt).</summary>
    public void SaveLatest(TrainingState state)
    {
        if (_run is null) return;
        Write(_run.LatestCheckpoint, state, _run.PreviousCheckpoint);
        LastGood = (_run.LatestCheckpoint, state.GlobalStep);
    }

    /// <summary>Applies the best-checkpoint rule to an epoch's validation metrics: the early-stopping metric (with its
    /// MinDelta) when early stopping is on, else validation accuracy. Writes best.ckpt on improvement.</summary>
    public TrainingState AfterValidation(TrainingState state, RegNetTrainingMetrics validation)
    {
        double value = _stopping?.Pick(validation) ?? validation.Accuracy;
        bool improved = _stopping?.Improves(value, state.BestMetric) ?? value > state.BestMetric;
        if (!improved) return state with { EpochsWithoutImprovement = state.EpochsWithoutImprovement + 1 };
        state = state with { BestMetric = value, EpochsWithoutImprovement = 0 };
        if (_run is not null) Write(_run.BestCheckpoint, state, previous: null);
        return state;
    }

    /// <summary>Why training should stop after this epoch (null: go on).</summary>
    public string? StopReason(TrainingState state, int epoch) =>
        _stopping is { } es && state.EpochsWithoutImprovement >= es.Patience
            ? $"early stopping after epoch {epoch} ({es.Metric} did not improve by {es.MinDelta} for {es.Patience} epochs)"
            : null;

    /// <summary>One sentence for a divergence error: which checkpoint to go back to.</summary>
    public string LastGoodSentence => LastGood is { } good
        ? $"The last good checkpoint is {good.Path} (step {good.Step}); its weights are finite."
        : _run is null ? "No checkpoint was written (set WorkspacePath to keep them)." : "No checkpoint of this run has been written yet.";

    private void Write(string path, TrainingState state, string? previous)
    {
        // Checked before writing so that no checkpoint on disk ever holds diverged weights.
        if (!Checkpoint.IsFinite(_model))
            throw new InvalidOperationException(
                $"The weights became non-finite (NaN or infinity) by epoch {state.Epoch}, step {state.GlobalStep}; {path} was not written. " +
                $"Lower the learning rate or check the data. {LastGoodSentence}");
        var header = new CheckpointHeader(state, _run?.RecordCount ?? 0, _model.Padding.ToString(), Config);
        try
        {
            Checkpoint.Save(path, header, _model, _optimizer, previous);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Could not write the checkpoint {path} at step {state.GlobalStep}: {e.Message}. " +
                (File.Exists(path) ? $"{path} still holds the checkpoint before it, complete. " : "") +
                "Free disk space or make the run folder writable, then resume with ResumeFrom = the run folder.", e);
        }
    }
}
