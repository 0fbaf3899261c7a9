using System.Buffers.Binary;
using System.IO.Compression;
using System.Text.Json;
using Microsoft.ML.RegNet.Weights.Formats;

namespace Microsoft.ML.RegNet.Weights;

/// <summary>Recognises a weight file from its content (magic bytes), cross-checked with its extension.</summary>
internal static class WeightFormatDetector
{
    private static readonly Dictionary<string, WeightFormat> Extensions = new(StringComparer.OrdinalIgnoreCase)
    {
        [".h5"] = WeightFormat.KerasHdf5, [".hdf5"] = WeightFormat.KerasHdf5,
        [".pth"] = WeightFormat.PyTorch, [".pt"] = WeightFormat.PyTorch, [".pyth"] = WeightFormat.PyTorch,
        [".bin"] = WeightFormat.PyTorch, [".ckpt"] = WeightFormat.PyTorch, [".pkl"] = WeightFormat.PyTorch,
        [".safetensors"] = WeightFormat.Safetensors, [".regnet"] = WeightFormat.RegNetML, [".zip"] = WeightFormat.MLNetModel,
    };

    /// <summary>The format of <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Unknown content, or content that contradicts the extension.</exception>
    public static WeightFormat Detect(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Weight file not found: {path}", path);
        string ext = Path.GetExtension(path);
        if (string.Equals(ext, ".keras", StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{path}: Keras 3 '.keras' archives are not supported; save the weights with tf.keras as '.h5' (save_weights) instead.");
        WeightFormat? byContent = DetectContent(path);
        WeightFormat? byExtension = Extensions.TryGetValue(ext, out var e) ? e : null;
        if (byContent is null)
            throw new InvalidDataException(
                $"{path}: unknown weight format: the content is neither Keras HDF5, a torch.save checkpoint, safetensors nor an ML.NET model with a RegNet" +
                (byExtension is { } x ? $" (the extension '{ext}' suggests {x}; the file may be truncated or corrupt)." : "."));
        bool compatible = byExtension is null || byExtension == byContent
            || (byContent is WeightFormat.RegNetCheckpoint && string.Equals(ext, ".ckpt", StringComparison.OrdinalIgnoreCase))
            || (byExtension is WeightFormat.Safetensors or WeightFormat.RegNetML && byContent is WeightFormat.Safetensors or WeightFormat.RegNetML);
        if (!compatible)
            throw new InvalidDataException($"{path}: the extension '{ext}' says {byExtension}, but the content is {byContent}. Rename the file or check that it is the one you meant.");
        return byContent.Value;
    }

    private static WeightFormat? DetectContent(string path)
    {
        if (KerasHdf5.LooksLikeHdf5(path)) return WeightFormat.KerasHdf5;
        var head = new byte[16];
        long length;
        using (var stream = File.OpenRead(path))
        {
            length = stream.Length;
            stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        if (head.AsSpan(0, 4).SequenceEqual(Training.Checkpoint.Magic)) return WeightFormat.RegNetCheckpoint;
        if (head[0] == 'P' && head[1] == 'K') return ZipContent(path);
        if (TorchPickle.LooksLikeTorchFile(head)) return WeightFormat.PyTorch;
        if (length >= 10)
        {
            long headerLength = BinaryPrimitives.ReadInt64LittleEndian(head);
            if (headerLength > 1 && headerLength < length && head[8] == '{')
                return IsRegNetML(path, headerLength) ? WeightFormat.RegNetML : WeightFormat.Safetensors;
        }
        return null;
    }

    // Both torch.save and ML.NET write zip archives; their entries tell them apart.
    private static WeightFormat? ZipContent(string path)
    {
        try
        {
            using var zip = ZipFile.OpenRead(path);
            if (!zip.Entries.Any(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal)))
                return MLNetModelZip.IsMLNetModel(zip) ? WeightFormat.MLNetModel : null;
        }
        catch (InvalidDataException)
        {
            // A damaged zip: the torch reader reports what is wrong with it.
        }
        return WeightFormat.PyTorch;
    }

    private static bool IsRegNetML(string path, long headerLength)
    {
        try
        {
            using var stream = File.OpenRead(path);
            stream.Position = 8;
            var header = new byte[headerLength];
            stream.ReadExactly(header);
            using var json = JsonDocument.Parse(header);
            return json.RootElement.TryGetProperty("__metadata__", out var meta)
                && meta.TryGetProperty(RegNetFile.FormatKey, out var f) && f.GetString() == RegNetFile.FormatName;
        }
        catch (Exception e) when (e is JsonException or EndOfStreamException or IOException)
        {
            return false;
        }
    }
}
