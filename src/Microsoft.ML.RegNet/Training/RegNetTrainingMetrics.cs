namespace Microsoft.ML.RegNet.Training;

/// <summary>Which data a metrics record describes.</summary>
public enum MetricsPhase
{
    /// <summary>Running averages over the training steps since the last report.</summary>
    TrainSteps,
    /// <summary>Averages over a whole training epoch.</summary>
    TrainEpoch,
    /// <summary>The validation set at the end of an epoch.</summary>
    Validation,
}

/// <summary>One metrics record, passed to <see cref="RegNetTrainer.Options.MetricsCallback"/> and written to the run directory.</summary>
public sealed record RegNetTrainingMetrics(
    MetricsPhase Phase, int Epoch, long Step, double Loss, double Accuracy, double Top5Accuracy,
    double LearningRate, double ImagesPerSecond, long Images)
{
    public override string ToString() => FormattableString.Invariant(
        $"{Phase} epoch {Epoch} step {Step}: loss {Loss:F4}, top-1 {Accuracy:P2}, top-5 {Top5Accuracy:P2}, lr {LearningRate:G4}, {ImagesPerSecond:F1} images/s");
}

/// <summary>Which metric early stopping watches.</summary>
public enum EarlyStoppingMetric
{
    ValidationAccuracy,
    ValidationLoss,
}

/// <summary>Stops training when the metric has not improved by <see cref="MinDelta"/> for <see cref="Patience"/> epochs.</summary>
public sealed record EarlyStoppingOptions(EarlyStoppingMetric Metric = EarlyStoppingMetric.ValidationAccuracy, int Patience = 5, double MinDelta = 0.0)
{
    internal bool Improves(double candidate, double best) => Metric == EarlyStoppingMetric.ValidationLoss
        ? candidate < best - MinDelta
        : candidate > best + MinDelta;

    internal double Worst => Metric == EarlyStoppingMetric.ValidationLoss ? double.PositiveInfinity : double.NegativeInfinity;

    internal double Pick(RegNetTrainingMetrics validation) =>
        Metric == EarlyStoppingMetric.ValidationLoss ? validation.Loss : validation.Accuracy;
}
