using System.Buffers.Binary;
using System.IO.Compression;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Onnx;

namespace Microsoft.ML.RegNet.Weights.Formats;

/// <summary>What an ML.NET model zip holding a RegNet gives back.</summary>
/// <param name="Model">The network, rebuilt by <see cref="RegNetOnnxImporter"/> from the embedded ONNX export.</param>
/// <param name="ClassNames">The names of the scoring chain's predicted-label key, in class order; empty when none was found.</param>
/// <param name="Notes">What could not be recovered, and why.</param>
internal sealed record MLNetRegNet(RegNetModel Model, IReadOnlyList<string> ClassNames, IReadOnlyList<string> Notes);

/// <summary>
/// A model saved with <c>mlContext.Model.Save</c> from a pipeline with a RegNet: the RegNet transformer saves itself as
/// ML.NET's OnnxTransformer around an ONNX export of the network, which ML.NET keeps in the zip as an entry named
/// <c>…/OnnxModel</c> (the ONNX bytes behind a length prefix). The weights are recovered from that export.
/// </summary>
internal static class MLNetModelZip
{
    private const string OnnxEntryName = "OnnxModel";
    private const string PredictedLabelColumn = "PredictedLabel";

    /// <summary>True when the zip has an ML.NET ONNX entry and is not a torch.save archive.</summary>
    public static bool IsMLNetModel(ZipArchive zip) =>
        zip.Entries.Any(IsOnnxEntry) && !zip.Entries.Any(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal));

    /// <summary>Rebuilds the network of the (single) RegNet ONNX export in the zip and reads its class names.</summary>
    /// <exception cref="InvalidDataException">No ONNX entry holds a RegNet export, or the zip is damaged; the message names the file.</exception>
    public static MLNetRegNet Read(string path)
    {
        RegNetModel? model = null;
        try
        {
            string entryName;
            using (var zip = ZipFile.OpenRead(path)) (model, entryName) = FindRegNet(zip, new FileInfo(path).Length);
            var notes = new List<string> { $"weights recovered from the ONNX export in the zip's '{entryName}'" };
            return new MLNetRegNet(model, ClassNames(path, model.NumberOfClasses, notes), notes);
        }
        catch (InvalidDataException e)
        {
            model?.Dispose();
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    private static (RegNetModel Model, string Entry) FindRegNet(ZipArchive zip, long fileLength)
    {
        (RegNetModel Model, string Entry)? found = null;
        var others = new List<string>();
        foreach (var entry in zip.Entries.Where(IsOnnxEntry))
        {
            RegNetModel candidate;
            using (var onnx = new MemoryStream(OnnxBytes(entry, fileLength)))
            {
                try
                {
                    candidate = RegNetOnnxImporter.Load(onnx);
                }
                catch (InvalidDataException e)
                {
                    others.Add($"'{entry.FullName}' ({e.Message})"); // an ONNX model from elsewhere in the pipeline
                    continue;
                }
            }
            if (found is { } first)
            {
                candidate.Dispose();
                first.Model.Dispose();
                throw new InvalidDataException(
                    $"it holds more than one RegNet ('{first.Entry}', '{entry.FullName}'); load the weights from an ONNX export of the one you mean (RegNetOnnxExporter).");
            }
            found = (candidate, entry.FullName);
        }
        return found ?? throw new InvalidDataException(
            $"it is an ML.NET model, but none of its ONNX models is a RegNet export: {string.Join("; ", others)}. Only a pipeline trained with the " +
            "RegNet trainer (or built by RegNetOnnxScoring) can be trained further.");
    }

    private static bool IsOnnxEntry(ZipArchiveEntry e) =>
        e.Name == OnnxEntryName || e.FullName.EndsWith("/" + OnnxEntryName, StringComparison.Ordinal);

    /// <summary>The ONNX bytes of an OnnxTransformer entry: a 32-bit length, then the model.</summary>
    private static byte[] OnnxBytes(ZipArchiveEntry entry, long fileLength)
    {
        if (entry.Length < 4 || entry.Length > int.MaxValue || entry.CompressedLength > fileLength || entry.Length > 64 * entry.CompressedLength + (1 << 20))
            throw new InvalidDataException($"its entry '{entry.FullName}' claims {entry.Length} bytes ({entry.CompressedLength} compressed); it is damaged.");
        var bytes = new byte[entry.Length];
        using (var s = entry.Open()) s.ReadExactly(bytes);
        int length = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        if (length != bytes.Length - 4)
            throw new InvalidDataException($"its entry '{entry.FullName}' is not an ML.NET ONNX model stream (length prefix {length}, {bytes.Length - 4} bytes follow).");
        return bytes[4..];
    }

    /// <summary>The key values of the chain's predicted label, read through ML.NET's own loader.</summary>
    private static IReadOnlyList<string> ClassNames(string path, int numberOfClasses, List<string> notes)
    {
        try
        {
            var ml = new MLContext();
            var chain = ml.Model.Load(path, out var inputSchema);
            var output = chain.GetOutputSchema(inputSchema);
            var candidates = output.Where(c => c.Type is KeyDataViewType && c.HasKeyValues()).ToList();
            var named = candidates.Where(c => c.Name == PredictedLabelColumn).ToList();
            var chosen = named.Count > 0 ? named : candidates.Count == 1 ? candidates : [];
            if (chosen.Count == 0)
            {
                notes.Add($"class names not found: the model has {candidates.Count} key columns with names and none is '{PredictedLabelColumn}'");
                return Array.Empty<string>();
            }
            var label = chosen[^1];
            VBuffer<ReadOnlyMemory<char>> values = default;
            label.GetKeyValues(ref values);
            var names = values.DenseValues().Select(v => v.ToString()).ToList();
            if (names.Count == numberOfClasses) return names;
            notes.Add($"class names not used: '{label.Name}' has {names.Count} names for {numberOfClasses} classes");
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or IOException or ArgumentException)
        {
            notes.Add($"class names not read: ML.NET could not load the model ({e.GetType().Name}: {e.Message})");
        }
        return Array.Empty<string>();
    }
}
