namespace Microsoft.ML.RegNet.Data.Pipeline;

/// <summary>What the input pipeline does with a row whose image cannot be used (undecodable, empty, missing label…).</summary>
public enum BadImagePolicy
{
    /// <summary>Throw <see cref="InvalidDataException"/> naming the row index and the problem (default).</summary>
    FailOnBadImage,

    /// <summary>Leave the row out of its batch (which gets smaller) and count it in <see cref="ImageBatch.BadRows"/>.</summary>
    Skip,
}
