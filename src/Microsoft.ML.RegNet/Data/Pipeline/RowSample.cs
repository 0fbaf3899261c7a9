using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Data.Pipeline;

/// <summary>What the reader got for one row (<see cref="Row"/> is its cursor position): encoded bytes to decode, an image
/// ML.NET already decoded, a row left unread because it falls in a batch skipped on resume, or why the row is unusable.</summary>
internal abstract record RowSample(long Row)
{
    /// <summary>Encoded file bytes (a <c>LoadRawImageBytes</c> column); a worker decodes them.</summary>
    public sealed record Encoded(long Row, long Label, byte[] Bytes) : RowSample(Row);

    /// <summary>Pixels of an <c>MLImage</c> (a <c>LoadImages</c> column), decoded by ML.NET's getter.</summary>
    public sealed record Decoded(long Row, long Label, RgbImage Image) : RowSample(Row);

    /// <summary>A row of a skipped batch: its columns were never read.</summary>
    public sealed record Unread(long Row) : RowSample(Row);

    /// <summary>A row that cannot be used, and why.</summary>
    public sealed record Bad(BadRow Problem) : RowSample(Problem.RowIndex);
}
