using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet;

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
/// <param name="Phase">Which data the record describes.</param>
/// <param name="Epoch">The epoch, counted from 0.</param>
/// <param name="Step">Optimizer steps taken since the start of training (resumed runs continue the count).</param>
/// <param name="Loss">Mean cross-entropy per image (with label smoothing and mixing as trained); NaN when no image was seen.</param>
/// <param name="Accuracy">Top-1 accuracy, a fraction in [0, 1] (against the unmixed labels).</param>
/// <param name="Top5Accuracy">Top-5 accuracy, a fraction in [0, 1].</param>
/// <param name="LearningRate">The learning rate at the time of the record.</param>
/// <param name="ImagesPerSecond">Throughput over the images of the record, wall-clock.</param>
/// <param name="Images">Images the record averages over.</param>
public sealed record RegNetTrainingMetrics(
    MetricsPhase Phase, int Epoch, long Step, double Loss, double Accuracy, double Top5Accuracy,
    double LearningRate, double ImagesPerSecond, long Images)
{
    /// <summary>One line for logs: phase, epoch, step, loss, top-1 and top-5 accuracy, learning rate and throughput.</summary>
    public override string ToString() => FormattableString.Invariant(
        $"{Phase} epoch {Epoch} step {Step}: loss {Loss:F4}, top-1 {Accuracy:P2}, top-5 {Top5Accuracy:P2}, lr {LearningRate:G4}, {ImagesPerSecond:F1} images/s");
}

/// <summary>Which metric early stopping watches.</summary>
public enum EarlyStoppingMetric
{
    /// <summary>Top-1 accuracy on the validation set; higher is better.</summary>
    ValidationAccuracy,
    /// <summary>Mean cross-entropy on the validation set; lower is better.</summary>
    ValidationLoss,
}

/// <summary>Stops training when the metric has not improved by <see cref="MinDelta"/> for <see cref="Patience"/> epochs.</summary>
/// <param name="Metric">The validation metric watched (accuracy).</param>
/// <param name="Patience">Epochs without improvement after which training stops (5).</param>
/// <param name="MinDelta">Smallest change that counts as an improvement, in the metric's units (0).</param>
public sealed record EarlyStoppingOptions(EarlyStoppingMetric Metric = EarlyStoppingMetric.ValidationAccuracy, int Patience = 5, double MinDelta = 0.0)
{
    internal bool Improves(double candidate, double best) => Metric == EarlyStoppingMetric.ValidationLoss
        ? candidate < best - MinDelta
        : candidate > best + MinDelta;

    internal double Worst => Metric == EarlyStoppingMetric.ValidationLoss ? double.PositiveInfinity : double.NegativeInfinity;

    internal double Pick(RegNetTrainingMetrics validation) =>
        Metric == EarlyStoppingMetric.ValidationLoss ? validation.Loss : validation.Accuracy;
}
