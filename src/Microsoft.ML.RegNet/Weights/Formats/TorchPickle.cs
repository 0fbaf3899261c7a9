using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Weights.Formats;

/// <summary>
/// Reads PyTorch checkpoints (<c>torch.save</c>: the zip format and the legacy pre-1.6 format of the published pycls
/// <c>.pyth</c> files) without running anything from them: <see cref="TorchArchive"/> holds the container,
/// <see cref="PickleMachine"/> interprets the pickle, and <see cref="TorchResolver"/>'s allow-list is the only place that
/// decides which Python globals may be constructed.
/// </summary>
internal static class TorchPickle
{
    /// <summary>Keys a checkpoint may keep its state dict under (pycls, Lightning-style, plain wrappers, EMA copies), in
    /// the order they are tried; used by <see cref="ReadStateDict"/> and named in its error message.</summary>
    public static IReadOnlyList<string> StateDictWrapperKeys { get; } = ["model_state", "state_dict", "model", "module", "ema_state"];

    // A state dict's tensors together take about as many bytes as the file. More means strides that repeat storage
    // elements (stride 0, overlapping views): 568 bytes could otherwise ask for gigabytes. The slack admits small
    // legitimately expanded tensors.
    private const long ExpansionSlackBytes = 16L << 20;

    /// <summary>True when the bytes start like a <c>torch.save</c> file (zip or legacy pickle).</summary>
    public static bool LooksLikeTorchFile(ReadOnlySpan<byte> head) =>
        (head.Length >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) || (head.Length >= 2 && head[0] == 0x80 && head[1] <= 5);

    /// <summary>A checkpoint's top-level object (dicts, lists, numbers, strings, <see cref="TensorReference"/>s); no tensor data is read.</summary>
    /// <exception cref="UnsafePickleException">The pickle references a global outside the allow-list.</exception>
    /// <exception cref="InvalidDataException">Truncated, malformed or hostile file.</exception>
    public static object? Read(string path) => Guard(path, () =>
    {
        using var archive = TorchArchive.Open(path);
        return archive.Root;
    });

    /// <summary>
    /// The state dict of a checkpoint: the top-level dict itself, or the first dict under one of
    /// <see cref="StateDictWrapperKeys"/> that holds tensors; a DataParallel <c>module.</c> prefix is removed. Only tensor
    /// entries are kept. Every tensor is checked against its storage, and all of them against the file's size, before
    /// any tensor data is read.
    /// </summary>
    /// <returns>The tensors, in file order, and the wrapper key they were found under (null at top level).</returns>
    public static (Dictionary<string, Tensor> Tensors, string? Wrapper) ReadStateDict(string path) => Guard(path, () =>
    {
        TorchRuntime.Configure();
        using var archive = TorchArchive.Open(path);
        var (dict, wrapper) = FindStateDict(archive.Root);
        bool allPrefixed = dict.Keys.All(k => k is string s && s.StartsWith("module.", StringComparison.Ordinal));
        var references = new List<(string Name, TensorReference Tensor)>();
        foreach (var (key, value) in dict)
            if (key is string name && value is TensorReference t) references.Add((allPrefixed ? name["module.".Length..] : name, t));
        CheckSizes(references, archive);
        return (Materialize(archive, references), wrapper);
    });

    private static (OrderedDictionary<object, object?> Dict, string? Wrapper) FindStateDict(object? root)
    {
        var top = root as OrderedDictionary<object, object?>
            ?? throw new InvalidDataException("the checkpoint is not a dictionary, so it holds no state dict.");
        if (HoldsTensors(top)) return (top, null);
        foreach (string key in StateDictWrapperKeys)
            if (top.TryGetValue(key, out var inner) && inner is OrderedDictionary<object, object?> d && HoldsTensors(d)) return (d, key);
        throw new InvalidDataException(
            $"no state dict found: the checkpoint's top-level keys are {string.Join(", ", top.Keys.Take(10))}, and none of " +
            $"{string.Join(", ", StateDictWrapperKeys)} holds tensors. Save the model's state_dict() on its own, or under one of these keys.");
    }

    private static bool HoldsTensors(OrderedDictionary<object, object?> d) => d.Values.Any(v => v is TensorReference);

    private static void CheckSizes(List<(string Name, TensorReference Tensor)> references, TorchArchive archive)
    {
        long fileLength = archive.FileLength, budget = 2 * fileLength + ExpansionSlackBytes, total = 0;
        foreach (var (name, tensor) in references)
        {
            try
            {
                archive.CheckStorage(tensor.Storage);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"tensor '{name}': {e.Message}", e);
            }
            long bytes = tensor.Check(name);
            total = StorageReference.Checked(() => total + bytes, $"tensor '{name}'");
            if (total > budget)
                throw new InvalidDataException(
                    $"tensor '{name}' (shape [{string.Join(", ", tensor.Size)}], strides [{string.Join(", ", tensor.Stride)}]) takes {bytes} bytes, " +
                    $"bringing the state dict to {total} bytes from a file of {fileLength}: its strides repeat storage elements, which a saved " +
                    "state dict does not do. Refused before allocating it.");
        }
    }

    /// <summary>Reads each storage once, when its first tensor is materialised, and frees it after its last.</summary>
    private static Dictionary<string, Tensor> Materialize(TorchArchive archive, List<(string Name, TensorReference Tensor)> references)
    {
        var results = new Tensor?[references.Count];
        try
        {
            foreach (var group in references.Select((r, i) => (r.Tensor, Index: i)).GroupBy(r => r.Tensor.Storage.Key, StringComparer.Ordinal))
            {
                using var storage = archive.ReadStorage(group.First().Tensor.Storage);
                foreach (var (tensor, index) in group) results[index] = tensor.Materialize(storage);
            }
            var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            for (int i = 0; i < references.Count; i++)
            {
                if (tensors.Remove(references[i].Name, out var duplicate)) duplicate.Dispose();
                tensors[references[i].Name] = results[i]!;
            }
            return tensors;
        }
        catch
        {
            foreach (var t in results) t?.Dispose();
            throw;
        }
    }

    /// <summary>Runs a read and puts the file's name, and what to do, into every error it raises.</summary>
    private static T Guard<T>(string path, Func<T> read)
    {
        const string Advice = " Re-create the file with torch.save(model.state_dict(), path) (or safetensors.torch.save_file), or obtain an intact copy.";
        try
        {
            return read();
        }
        catch (UnsafePickleException e)
        {
            throw new UnsafePickleException($"{path}: {e.Message}");
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: not a usable PyTorch checkpoint: {e.Message}{Advice}", e);
        }
        catch (Exception e) when (e is EndOfStreamException or ArgumentOutOfRangeException or IndexOutOfRangeException or InvalidCastException)
        {
            throw new InvalidDataException($"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {e.Message}{Advice}", e);
        }
    }
}
