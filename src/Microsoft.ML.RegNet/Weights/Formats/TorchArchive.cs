using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Weights.Formats;

/// <summary>
/// An open <c>torch.save</c> file: its data pickle, interpreted when opened (tensors stay <see cref="TensorReference"/>s),
/// and its storages, each read from the file only when asked for, with 64-bit sizes. A storage is checked against the
/// file (<see cref="CheckStorage"/>) before it is read, so nothing larger than the file is ever allocated for it.
/// </summary>
internal abstract class TorchArchive : IDisposable
{
    // Storages are copied in slices so a span never exceeds int.MaxValue bytes.
    private const int ChunkBytes = 1 << 20;

    protected TorchArchive(string path)
    {
        Path = path;
        File = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
    }

    public string Path { get; }

    public long FileLength => File.Length;

    /// <summary>The checkpoint's top-level object.</summary>
    public object? Root { get; protected set; }

    protected FileStream File { get; }

    /// <summary>Opens a zip (<c>PK</c>) or legacy (pickle) <c>torch.save</c> file and interprets its data pickle.</summary>
    public static TorchArchive Open(string path)
    {
        var head = new byte[2];
        using (var probe = System.IO.File.OpenRead(path)) probe.ReadAtLeast(head, 2, throwOnEndOfStream: false);
        return head[0] == 'P' && head[1] == 'K' ? new ZipTorchArchive(path) : new LegacyTorchArchive(path);
    }

    /// <summary>Throws <see cref="InvalidDataException"/> unless the file holds all the bytes <paramref name="storage"/> declares.</summary>
    public abstract void CheckStorage(StorageReference storage);

    /// <summary>The whole storage as a flat tensor of its element type; checked first.</summary>
    public abstract Tensor ReadStorage(StorageReference storage);

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing) File.Dispose();
    }

    /// <summary>Reads <see cref="StorageReference.ByteLength"/> bytes from <paramref name="source"/> straight into a new tensor.</summary>
    protected static Tensor ReadStorageData(Stream source, StorageReference storage)
    {
        long chunk = ChunkBytes / storage.ElementSize;
        var data = empty(new[] { storage.Elements }, storage.Type);
        try
        {
            for (long start = 0; start < storage.Elements; start += chunk)
            {
                // A slice of a contiguous 1-D tensor is contiguous: its bytes are a span of the tensor's own memory.
                using var slice = data.narrow(0, start, Math.Min(chunk, storage.Elements - start));
                var target = slice.bytes;
                if (source.ReadAtLeast(target, target.Length, throwOnEndOfStream: false) < target.Length)
                    throw new EndOfStreamException($"storage '{storage.Key}' is cut off: it needs {storage.ByteLength} bytes (truncated file?).");
            }
            return data;
        }
        catch
        {
            data.Dispose();
            throw;
        }
    }
}

/// <summary>The zip format (PyTorch ≥ 1.6): <c>&lt;name&gt;/data.pkl</c>, <c>&lt;name&gt;/data/&lt;key&gt;</c>, <c>&lt;name&gt;/byteorder</c>.</summary>
internal sealed class ZipTorchArchive : TorchArchive
{
    private readonly ZipArchive _zip;
    private readonly string _prefix;

    public ZipTorchArchive(string path) : base(path)
    {
        try
        {
            _zip = new ZipArchive(File, ZipArchiveMode.Read, leaveOpen: true);
            var pkl = _zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
                ?? throw new InvalidDataException("the zip archive has no <name>/data.pkl: not a torch.save file.");
            _prefix = pkl.FullName[..^"data.pkl".Length];
            if (_zip.GetEntry(_prefix + "byteorder") is { } order)
            {
                using var reader = new StreamReader(OpenChecked(order));
                string value = reader.ReadToEnd().Trim();
                if (value != "little") throw new InvalidDataException($"the checkpoint was written with {value}-endian storages; only little-endian is supported.");
            }
            using var pickle = new MemoryStream();
            using (var s = OpenChecked(pkl)) s.CopyTo(pickle);
            pickle.Position = 0;
            Root = new PickleMachine(pickle, new TorchResolver()).Load();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public override void CheckStorage(StorageReference storage)
    {
        var entry = Entry(storage.Key);
        CheckSizes(entry);
        if (storage.ByteLength > entry.Length)
            throw new InvalidDataException(
                $"storage '{storage.Key}' declares {storage.Elements} × {storage.ElementSize} bytes, but its archive entry holds {entry.Length} bytes (truncated or forged file).");
    }

    public override Tensor ReadStorage(StorageReference storage)
    {
        CheckStorage(storage);
        using var stream = Entry(storage.Key).Open();
        return ReadStorageData(stream, storage);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _zip?.Dispose();
        base.Dispose(disposing);
    }

    private ZipArchiveEntry Entry(string key) => _zip.GetEntry(_prefix + "data/" + key)
        ?? throw new InvalidDataException($"storage '{key}' is missing from the archive (truncated file?).");

    /// <summary>Opens an entry whose sizes fit the file; torch.save stores entries uncompressed, so an entry that would
    /// inflate far beyond its compressed bytes (a zip bomb) is refused.</summary>
    private Stream OpenChecked(ZipArchiveEntry entry)
    {
        CheckSizes(entry);
        return entry.Open();
    }

    private void CheckSizes(ZipArchiveEntry entry)
    {
        if (entry.CompressedLength > FileLength)
            throw new InvalidDataException($"archive entry '{entry.FullName}' claims {entry.CompressedLength} bytes in a file of {FileLength} bytes (truncated or forged file).");
        if (entry.Length > 64 * entry.CompressedLength + (1 << 20))
            throw new InvalidDataException($"archive entry '{entry.FullName}' claims {entry.Length} bytes from {entry.CompressedLength} compressed; refused.");
    }
}

/// <summary>
/// The legacy format (before PyTorch 1.6, e.g. pycls <c>.pyth</c>): pickles of the magic number, the protocol version
/// and sys_info, then the object, then the list of storage keys; then, per key in that order, an int64 element count
/// followed by the raw storage.
/// </summary>
internal sealed class LegacyTorchArchive : TorchArchive
{
    private static readonly BigInteger Magic = BigInteger.Parse("119547037146038801333356", System.Globalization.CultureInfo.InvariantCulture);
    private readonly Dictionary<string, long> _positions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _problems = new(StringComparer.Ordinal);

    public LegacyTorchArchive(string path) : base(path)
    {
        try
        {
            if (Plain() is not BigInteger m || m != Magic)
                throw new InvalidDataException("not a PyTorch checkpoint: the pickle does not start with torch.save's magic number.");
            if (Plain() is not long version || version != 1001) throw new InvalidDataException("unsupported legacy torch.save protocol version.");
            if (Plain() is OrderedDictionary<object, object?> sysInfo && sysInfo.TryGetValue("little_endian", out var le) && le is false)
                throw new InvalidDataException("the checkpoint was written on a big-endian machine; not supported.");
            var resolver = new TorchResolver();
            Root = new PickleMachine(File, resolver).Load();
            if (Plain() is not List<object?> keys) throw new InvalidDataException("the storage key list is missing (truncated file?).");
            LocateStorages(keys, resolver.Storages);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public override void CheckStorage(StorageReference storage)
    {
        if (_problems.TryGetValue(storage.Key, out var problem)) throw new InvalidDataException(problem);
        if (!_positions.ContainsKey(storage.Key)) throw new InvalidDataException($"storage '{storage.Key}' is missing (truncated file?).");
    }

    public override Tensor ReadStorage(StorageReference storage)
    {
        CheckStorage(storage);
        File.Position = _positions[storage.Key];
        return ReadStorageData(File, storage);
    }

    private object? Plain() => new PickleMachine(File, PlainValueResolver.Instance).Load();

    /// <summary>Records where each storage's bytes start, checking each against its declaration and the file's end. The
    /// first storage that does not fit, and every one after it (their positions are unknown), keep the reason instead.</summary>
    private void LocateStorages(List<object?> keys, IReadOnlyDictionary<string, StorageReference> storages)
    {
        var header = new byte[8];
        string? broken = null;
        foreach (var keyObject in keys)
        {
            string key = keyObject as string ?? throw new InvalidDataException("a storage key is not a string.");
            var storage = storages.TryGetValue(key, out var s) ? s
                : throw new InvalidDataException($"storage '{key}' is listed but no tensor names it, so its size is unknown.");
            if (broken is not null)
            {
                _problems[key] = $"storage '{key}' cannot be located: storage '{broken}' before it is damaged.";
                continue;
            }
            string? problem = Locate(storage, header);
            if (problem is not null) (_problems[key], broken) = (problem, key);
        }
    }

    private string? Locate(StorageReference storage, byte[] header)
    {
        if (File.ReadAtLeast(header, 8, throwOnEndOfStream: false) < 8) return $"storage '{storage.Key}' is cut off (truncated file?).";
        long count = BinaryPrimitives.ReadInt64LittleEndian(header);
        if (count != storage.Elements)
            return $"storage '{storage.Key}' declares {storage.Elements} elements in the pickle but {count} in its header.";
        long remaining = FileLength - File.Position;
        if (storage.ByteLength > remaining)
            return $"storage '{storage.Key}' needs {storage.ByteLength} bytes, but only {remaining} remain in the file (truncated or forged file).";
        _positions[storage.Key] = File.Position;
        File.Position += storage.ByteLength;
        return null;
    }
}
