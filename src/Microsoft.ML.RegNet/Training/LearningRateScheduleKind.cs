namespace Microsoft.ML.RegNet;

/// <summary>Shape of the learning-rate curve after warmup.</summary>
public enum LearningRateScheduleKind
{
    /// <summary>lr · ½(1 + cos(π·t/T)) — pycls and the Keras RegNets.</summary>
    HalfCosine,
    /// <summary>lr · γ^(number of milestones passed).</summary>
    Step,
    /// <summary>lr throughout.</summary>
    Constant,
}

/// <summary>Whether the schedule moves every optimizer step or once per epoch (pycls and the Keras RegNets' trainer: per epoch).</summary>
public enum ScheduleGranularity
{
    /// <summary>The learning rate is recomputed before every optimizer step (smooth curve).</summary>
    PerStep,
    /// <summary>The learning rate is recomputed at the start of every epoch and held for its steps.</summary>
    PerEpoch,
}
