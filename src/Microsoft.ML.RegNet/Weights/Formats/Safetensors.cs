using System.Buffers.Binary;
using System.Text.Json;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Weights.Formats;

/// <summary>
/// The safetensors format: an 8-byte little-endian header length, a JSON header (name → dtype, shape, byte range;
/// optional <c>__metadata__</c>), then raw little-endian tensor data. It holds only data, so reading it runs no code.
/// </summary>
internal static class Safetensors
{
    private const string MetadataKey = "__metadata__";
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    private static readonly Dictionary<string, (ScalarType Type, int Size)> DTypes = new()
    {
        ["F64"] = (ScalarType.Float64, 8), ["F32"] = (ScalarType.Float32, 4), ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2), ["I64"] = (ScalarType.Int64, 8), ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2), ["I8"] = (ScalarType.Int8, 1), ["U8"] = (ScalarType.Byte, 1), ["BOOL"] = (ScalarType.Bool, 1),
    };

    /// <summary>Reads every tensor of a file, in file order, with its metadata. The header is checked against the file
    /// (every tensor's byte range inside the data section, no overlaps, sizes that match the shapes) before any tensor is
    /// allocated, and each tensor is then read straight from the file.</summary>
    /// <exception cref="InvalidDataException">The file is truncated, not a safetensors file, or its header is inconsistent; the message names the file and the tensor.</exception>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        TorchRuntime.Configure();
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        var (entries, metadata, dataStart) = Guard(path, () => ReadHeader(stream));
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var e in entries)
            {
                var tensor = empty(e.Shape, e.Type);
                tensors[e.Name] = tensor;
                stream.Position = dataStart + e.Begin;
                ReadInto(stream, tensor, e.End - e.Begin, path, e.Name);
            }
            return (tensors, metadata);
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>The <c>__metadata__</c> of a file, from its header alone.</summary>
    /// <exception cref="InvalidDataException">The file is truncated or not a safetensors file.</exception>
    public static Dictionary<string, string> ReadMetadata(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return Guard(path, () => ReadHeader(stream)).Metadata;
    }

    private sealed record Entry(string Name, ScalarType Type, long[] Shape, long Begin, long End);

    private static T Guard<T>(string path, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message} Re-save the tensors with safetensors (save_file) or obtain an intact copy.", e);
        }
    }

    private static (List<Entry> Entries, Dictionary<string, string> Metadata, long DataStart) ReadHeader(Stream file)
    {
        var lengthBytes = new byte[8];
        if (file.ReadAtLeast(lengthBytes, 8, throwOnEndOfStream: false) < 8)
            throw new InvalidDataException("not a safetensors file: shorter than its 8-byte header length.");
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(lengthBytes);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || headerLength > file.Length - 8)
            throw new InvalidDataException($"not a safetensors file or truncated: header length {headerLength} for a file of {file.Length} bytes.");
        var headerBytes = new byte[headerLength];
        file.ReadExactly(headerBytes);
        long dataLength = file.Length - 8 - headerLength;
        var entries = new List<Entry>();
        var metadata = new Dictionary<string, string>();
        try
        {
            using var header = JsonDocument.Parse(headerBytes);
            foreach (var property in header.RootElement.EnumerateObject())
            {
                if (property.Name == MetadataKey)
                    foreach (var m in property.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString() ?? "";
                else
                    entries.Add(ParseEntry(property.Name, property.Value, dataLength));
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or KeyNotFoundException)
        {
            throw new InvalidDataException($"not a safetensors file: the header is not the expected JSON ({e.Message}).", e);
        }
        CheckNoOverlap(entries);
        return (entries, metadata, 8 + headerLength);
    }

    private static Entry ParseEntry(string name, JsonElement value, long dataLength)
    {
        string dtype = value.GetProperty("dtype").GetString() ?? "";
        if (!DTypes.TryGetValue(dtype, out var type))
            throw new InvalidDataException($"tensor '{name}' has unsupported dtype '{dtype}'.");
        long[] shape = value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        long[] offsets = value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        string what = $"tensor '{name}' (shape [{string.Join(", ", shape)}], {dtype}, bytes [{string.Join(", ", offsets)}])";
        if (shape.Any(d => d < 0)) throw new InvalidDataException($"{what} has a negative dimension.");
        long bytes;
        try
        {
            bytes = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * type.Size);
        }
        catch (OverflowException)
        {
            throw new InvalidDataException($"{what}: the shape's size overflows 64 bits.");
        }
        if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
            throw new InvalidDataException($"{what} lies outside the data section of {dataLength} bytes (truncated file?).");
        if (offsets[1] - offsets[0] != bytes)
            throw new InvalidDataException($"{what} needs {bytes} bytes but its byte range holds {offsets[1] - offsets[0]}.");
        return new Entry(name, type.Type, shape, offsets[0], offsets[1]);
    }

    private static void CheckNoOverlap(List<Entry> entries)
    {
        Entry? previous = null;
        foreach (var e in entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin))
        {
            if (previous is not null && e.Begin < previous.End)
                throw new InvalidDataException($"tensors '{previous.Name}' (bytes [{previous.Begin}, {previous.End}]) and '{e.Name}' (bytes [{e.Begin}, {e.End}]) overlap.");
            previous = e;
        }
    }

    private static void ReadInto(Stream file, Tensor tensor, long bytes, string path, string name)
    {
        if (bytes == 0) return;
        using var flat = tensor.view(-1);
        long chunk = (1 << 20) / tensor.ElementSize;
        for (long start = 0; start < flat.shape[0]; start += chunk)
        {
            // A slice of a contiguous 1-D tensor is contiguous: its bytes are a span of the tensor's own memory.
            using var slice = flat.narrow(0, start, Math.Min(chunk, flat.shape[0] - start));
            var target = slice.bytes;
            if (file.ReadAtLeast(target, target.Length, throwOnEndOfStream: false) < target.Length)
                throw new InvalidDataException($"{path}: tensor '{name}' is cut off (truncated file?).");
        }
    }

    /// <summary>Writes tensors (in the given order) and metadata; written to a temporary file, then renamed.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var typeNames = DTypes.ToDictionary(kv => kv.Value.Type, kv => kv.Key);
        var entries = new List<(string Name, string DType, long[] Shape, byte[] Bytes)>();
        foreach (var (name, tensor) in tensors)
        {
            if (!typeNames.TryGetValue(tensor.dtype, out var dtype))
                throw new ArgumentException($"Tensor '{name}' has dtype {tensor.dtype}, which safetensors cannot store.", nameof(tensors));
            using var contiguous = tensor.detach().cpu().contiguous();
            entries.Add((name, dtype, tensor.shape, contiguous.bytes.ToArray()));
        }

        using var headerStream = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerStream))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var e in entries)
            {
                json.WriteStartObject(e.Name);
                json.WriteString("dtype", e.DType);
                json.WriteStartArray("shape");
                foreach (var d in e.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + e.Bytes.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += e.Bytes.Length;
            }
            json.WriteEndObject();
        }
        // The header is padded with spaces to a multiple of 8 so the data section stays aligned.
        while (headerStream.Length % 8 != 0) headerStream.WriteByte((byte)' ');

        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(length, headerStream.Length);
            stream.Write(length);
            headerStream.Position = 0;
            headerStream.CopyTo(stream);
            foreach (var e in entries) stream.Write(e.Bytes);
        });
    }
}
