using Microsoft.ML.RegNet.Data.Pipeline;

namespace Microsoft.ML.RegNet;

/// <summary>What the input pipeline does with a row whose image cannot be used (file missing or unreadable, undecodable,
/// empty, missing label…). The same for <c>LoadImages</c> and <c>LoadRawImageBytes</c> columns.</summary>
public enum BadImagePolicy
{
    /// <summary>Throw <see cref="InvalidDataException"/> naming the row index and the problem (default); for a file
    /// <c>LoadRawImageBytes</c> cannot read, the problem names the file.</summary>
    FailOnBadImage,

    /// <summary>Leave the row out of its batch (which gets smaller) and count it in <see cref="ImageBatch.BadRows"/>.</summary>
    Skip,
}
