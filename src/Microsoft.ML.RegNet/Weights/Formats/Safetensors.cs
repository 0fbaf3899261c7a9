using System.Buffers.Binary;
using System.Text.Json;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Weights.Formats;

/// <summary>
/// The safetensors format: an 8-byte little-endian header length, a JSON header (name → dtype, shape, byte range;
/// optional <c>__metadata__</c>), then raw little-endian tensor data. It holds only data, so reading it runs no code.
/// </summary>
public static class Safetensors
{
    private const string MetadataKey = "__metadata__";
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    private static readonly Dictionary<string, (ScalarType Type, int Size)> DTypes = new()
    {
        ["F64"] = (ScalarType.Float64, 8), ["F32"] = (ScalarType.Float32, 4), ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2), ["I64"] = (ScalarType.Int64, 8), ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2), ["I8"] = (ScalarType.Int8, 1), ["U8"] = (ScalarType.Byte, 1), ["BOOL"] = (ScalarType.Bool, 1),
    };

    /// <summary>Reads every tensor of a file, in file order, with its metadata.</summary>
    /// <exception cref="InvalidDataException">The file is truncated or not a safetensors file.</exception>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        try
        {
            return Read(bytes);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>Reads every tensor of an in-memory safetensors file.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Read(ReadOnlySpan<byte> file)
    {
        if (file.Length < 8) throw new InvalidDataException("not a safetensors file: shorter than its 8-byte header length.");
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(file);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > file.Length)
            throw new InvalidDataException($"not a safetensors file or truncated: header length {headerLength} for a file of {file.Length} bytes.");
        var data = file.Slice(8 + (int)headerLength);
        JsonDocument header;
        try
        {
            header = JsonDocument.Parse(file.Slice(8, (int)headerLength).ToArray());
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"not a safetensors file: the header is not JSON ({e.Message}).", e);
        }

        var tensors = new Dictionary<string, Tensor>();
        var metadata = new Dictionary<string, string>();
        using (header)
        {
            foreach (var entry in header.RootElement.EnumerateObject())
            {
                if (entry.Name == MetadataKey)
                {
                    foreach (var m in entry.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString() ?? "";
                    continue;
                }
                string dtype = entry.Value.GetProperty("dtype").GetString() ?? "";
                if (!DTypes.TryGetValue(dtype, out var type))
                    throw new InvalidDataException($"tensor '{entry.Name}' has unsupported dtype '{dtype}'.");
                long[] shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                long count = shape.Aggregate(1L, (a, b) => a * b);
                if (offsets.Length != 2 || offsets[1] - offsets[0] != count * type.Size || offsets[0] < 0 || offsets[1] > data.Length)
                    throw new InvalidDataException(
                        $"tensor '{entry.Name}' claims bytes [{string.Join(", ", offsets)}] for {count} × {dtype}, but the data section has {data.Length} bytes (truncated file?).");
                var tensor = empty(shape, type.Type);
                tensor.bytes = data.Slice((int)offsets[0], (int)(offsets[1] - offsets[0])).ToArray();
                tensors[entry.Name] = tensor;
            }
        }
        return (tensors, metadata);
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
