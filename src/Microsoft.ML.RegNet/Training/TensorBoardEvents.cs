using Tensorboard;

namespace Microsoft.ML.RegNet.Training;

/// <summary>
/// Reads back the scalars of TensorBoard event files (TFRecord framing: a little-endian length, its CRC, an <c>Event</c>
/// protobuf, its CRC). A resumed run writes a new event file beside the old ones; what they already hold tells it which
/// steps not to write again.
/// </summary>
internal static class TensorBoardEvents
{
    private const string FilePattern = "events.out.tfevents.*";

    /// <summary>Every scalar in the folder's event files, file by file in name (creation) order.</summary>
    public static IEnumerable<(string Tag, long Step, float Value)> ReadScalars(string folder)
    {
        if (!Directory.Exists(folder)) yield break;
        foreach (var file in Directory.GetFiles(folder, FilePattern).Order(StringComparer.Ordinal))
            foreach (var scalar in ReadFile(file))
                yield return scalar;
    }

    /// <summary>The last step recorded for each tag in the folder's event files (empty when there are none).</summary>
    public static Dictionary<string, long> LastSteps(string folder)
    {
        var last = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (tag, step, _) in ReadScalars(folder))
            last[tag] = last.TryGetValue(tag, out var seen) ? Math.Max(seen, step) : step;
        return last;
    }

    // A record cut short (a killed process) or that does not parse ends the file: what follows cannot be framed.
    private static IEnumerable<(string Tag, long Step, float Value)> ReadFile(string file)
    {
        using var stream = File.OpenRead(file);
        var header = new byte[12];
        while (stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) == header.Length)
        {
            long length = BitConverter.ToInt64(header, 0);
            if (length < 0 || length > stream.Length - stream.Position - 4) yield break;
            var data = new byte[length];
            stream.ReadExactly(data);
            stream.Position += 4; // the data's CRC
            if (Parse(data) is not { } e) yield break;
            if (e.Summary is null) continue;
            foreach (var value in e.Summary.Value)
                yield return (value.Tag, e.Step, value.SimpleValue);
        }
    }

    private static Event? Parse(byte[] data)
    {
        try
        {
            return Event.Parser.ParseFrom(data);
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
            return null;
        }
    }
}
