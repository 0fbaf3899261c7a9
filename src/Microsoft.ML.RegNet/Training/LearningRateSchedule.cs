namespace Microsoft.ML.RegNet.Training;

/// <summary>
/// The learning rate as a pure function of training progress. With t the progress in epochs (fractional per step, the
/// integer epoch per epoch), T the total epochs and W the warmup epochs:
/// <c>lr(t) = base · shape(t) · (t &lt; W ? f + (1 − f)·t/W : 1)</c>, the pycls warmup with start factor f.
/// </summary>
internal sealed record LearningRateSchedule(
    double BaseLearningRate, int TotalEpochs, int StepsPerEpoch,
    LearningRateScheduleKind Kind = LearningRateScheduleKind.HalfCosine,
    ScheduleGranularity Granularity = ScheduleGranularity.PerStep,
    double WarmupEpochs = 0, double WarmupFactor = 0.1, IReadOnlyList<int>? Milestones = null, double Gamma = 0.1)
{
    /// <summary>Learning rate for the optimizer step <paramref name="stepInEpoch"/> of <paramref name="epoch"/> (both 0-based).</summary>
    public double At(int epoch, int stepInEpoch)
    {
        double t = Granularity == ScheduleGranularity.PerEpoch ? epoch : epoch + (double)stepInEpoch / Math.Max(1, StepsPerEpoch);
        double shape = Kind switch
        {
            LearningRateScheduleKind.HalfCosine => 0.5 * (1 + Math.Cos(Math.PI * t / TotalEpochs)),
            LearningRateScheduleKind.Step => Math.Pow(Gamma, (Milestones ?? Array.Empty<int>()).Count(m => t >= m)),
            LearningRateScheduleKind.Constant => 1.0,
            _ => throw new ArgumentOutOfRangeException(nameof(Kind)),
        };
        double warmup = t < WarmupEpochs ? WarmupFactor + (1 - WarmupFactor) * t / WarmupEpochs : 1.0;
        return BaseLearningRate * shape * warmup;
    }
}
