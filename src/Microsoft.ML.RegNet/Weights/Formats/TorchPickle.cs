using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Text;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Weights.Formats;

/// <summary>A pickle asked for something this reader refuses to create: it would run code in Python.</summary>
/// <remarks>Derives from <see cref="IOException"/> (as <see cref="InvalidDataException"/> does, which is sealed).</remarks>
public sealed class UnsafePickleException : IOException
{
    public UnsafePickleException(string message) : base(message) { }
}

/// <summary>
/// Reads PyTorch checkpoints (<c>torch.save</c>: the zip format with <c>data.pkl</c> + <c>data/N</c>, and the legacy
/// pre-1.6 format used by the published pycls <c>.pyth</c> files) with a <b>restricted</b> unpickler.
/// </summary>
/// <remarks>
/// Nothing from the file is ever executed. The unpickler is a small stack machine that understands the opcodes
/// <c>torch.save</c> emits (protocols 2–4) and builds plain .NET values; the only Python globals it accepts are
/// <c>collections.OrderedDict</c>, the tensor/parameter rebuild functions of <c>torch._utils</c> and the typed storage
/// classes (<c>torch.FloatStorage</c>, …), all of which it emulates itself. Any other global (<c>os.system</c>,
/// <c>builtins.eval</c>, a custom class, numpy scalars, …) raises <see cref="UnsafePickleException"/> as soon as the
/// opcode that names it is read, before anything after it is interpreted.
/// </remarks>
public static class TorchPickle
{
    private static readonly Dictionary<string, (ScalarType Type, int Size)> StorageTypes = new()
    {
        ["FloatStorage"] = (ScalarType.Float32, 4), ["DoubleStorage"] = (ScalarType.Float64, 8),
        ["HalfStorage"] = (ScalarType.Float16, 2), ["BFloat16Storage"] = (ScalarType.BFloat16, 2),
        ["LongStorage"] = (ScalarType.Int64, 8), ["IntStorage"] = (ScalarType.Int32, 4),
        ["ShortStorage"] = (ScalarType.Int16, 2), ["CharStorage"] = (ScalarType.Int8, 1),
        ["ByteStorage"] = (ScalarType.Byte, 1), ["BoolStorage"] = (ScalarType.Bool, 1),
    };

    private static readonly HashSet<string> AllowedGlobals = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    };

    /// <summary>The allow-list, for error messages and documentation.</summary>
    public static IEnumerable<string> AllowedGlobalNames =>
        AllowedGlobals.Concat(StorageTypes.Keys.Select(k => "torch." + k)).OrderBy(n => n, StringComparer.Ordinal);

    /// <summary>True when the bytes start like a <c>torch.save</c> file (zip or legacy pickle).</summary>
    public static bool LooksLikeTorchFile(ReadOnlySpan<byte> head) =>
        (head.Length >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) || (head.Length >= 2 && head[0] == 0x80 && head[1] <= 5);

    /// <summary>Reads a checkpoint and returns its top-level object (dicts, lists, numbers, strings and tensors).</summary>
    /// <exception cref="UnsafePickleException">The pickle references a global outside the allow-list.</exception>
    /// <exception cref="InvalidDataException">Truncated or malformed file.</exception>
    public static object? Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        try
        {
            return bytes.Length >= 4 && bytes[0] == 'P' && bytes[1] == 'K' ? ReadZip(bytes) : ReadLegacy(bytes);
        }
        catch (UnsafePickleException e)
        {
            throw new UnsafePickleException($"{path}: {e.Message}");
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or ArgumentOutOfRangeException or IndexOutOfRangeException or InvalidCastException)
        {
            throw new InvalidDataException($"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {e.Message}", e);
        }
    }

    /// <summary>
    /// The state dict of a checkpoint: the top-level dict itself, or the one under <c>model_state</c> (pycls),
    /// <c>state_dict</c>, <c>model</c> or <c>module</c>; a DataParallel <c>module.</c> prefix is removed. Only tensor entries are kept.
    /// </summary>
    /// <returns>The tensors and the wrapper key they were found under (null at top level).</returns>
    public static (Dictionary<string, Tensor> Tensors, string? Wrapper) ReadStateDict(string path)
    {
        var root = Read(path) as OrderedDictionary<object, object?>
            ?? throw new InvalidDataException($"{path}: the checkpoint is not a dictionary, so it holds no state dict.");
        string? wrapper = null;
        var dict = root;
        if (!root.Values.Any(v => v is TensorReference))
        {
            foreach (var key in new[] { "model_state", "state_dict", "model", "module", "ema_state" })
                if (root.TryGetValue(key, out var inner) && inner is OrderedDictionary<object, object?> d && d.Values.Any(v => v is TensorReference))
                {
                    (dict, wrapper) = (d, key);
                    break;
                }
            if (wrapper is null)
                throw new InvalidDataException(
                    $"{path}: no state dict found: the checkpoint's top-level keys are {string.Join(", ", root.Keys.Take(10))}, and none of " +
                    "model_state, state_dict, model, module holds tensors.");
        }
        var tensors = new Dictionary<string, Tensor>();
        bool allPrefixed = dict.Keys.All(k => k is string s && s.StartsWith("module.", StringComparison.Ordinal));
        foreach (var (key, value) in dict)
            if (key is string name && value is TensorReference t)
                tensors[allPrefixed ? name["module.".Length..] : name] = t.Materialize();
        return (tensors, wrapper);
    }

    // ---------------------------------------------------------------------------------------------------------

    private static object? ReadZip(byte[] bytes)
    {
        using var zip = new ZipArchive(new MemoryStream(bytes, writable: false), ZipArchiveMode.Read);
        var pkl = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
            ?? throw new InvalidDataException("the zip archive has no <name>/data.pkl: not a torch.save file.");
        string prefix = pkl.FullName[..^"data.pkl".Length];
        if (zip.GetEntry(prefix + "byteorder") is { } order)
        {
            using var reader = new StreamReader(order.Open());
            string value = reader.ReadToEnd().Trim();
            if (value != "little") throw new InvalidDataException($"the checkpoint was written with {value}-endian storages; only little-endian is supported.");
        }
        // Storages are read now (the archive is closed when this returns); tensors are materialised later from them.
        var storages = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var entry in zip.Entries.Where(e => e.FullName.StartsWith(prefix + "data/", StringComparison.Ordinal)))
        {
            // torch.save stores entries uncompressed; refuse what would inflate far beyond the file (zip bombs).
            if (entry.Length > int.MaxValue || entry.Length > 64L * entry.CompressedLength + (1 << 20))
                throw new InvalidDataException($"archive entry '{entry.FullName}' claims {entry.Length} bytes from {entry.CompressedLength} compressed; refused.");
            using var s = entry.Open();
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            storages[entry.FullName[(prefix.Length + "data/".Length)..]] = ms.ToArray();
        }
        byte[] LoadStorage(string key) => storages.TryGetValue(key, out var data) ? data
            : throw new InvalidDataException($"storage '{key}' is missing from the archive (truncated file?).");
        byte[] pickle;
        if (pkl.Length > int.MaxValue || pkl.Length > 64L * pkl.CompressedLength + (1 << 20))
            throw new InvalidDataException($"'{pkl.FullName}' claims {pkl.Length} bytes from {pkl.CompressedLength} compressed; refused.");
        using (var s = pkl.Open())
        using (var ms = new MemoryStream())
        {
            s.CopyTo(ms);
            pickle = ms.ToArray();
        }
        var machine = new Unpickler(pickle, 0, pid => PersistentStorage(pid, LoadStorage));
        return machine.Load();
    }

    private static object? ReadLegacy(byte[] bytes)
    {
        // Legacy torch.save: pickles of the magic number, the protocol version and sys_info, then the object, then the
        // list of storage keys; then, per key in that order, an int64 element count followed by the raw storage.
        var storageBytes = new Dictionary<string, byte[]>();
        var pending = new List<(StorageReference Ref, Action<byte[]> Bind)>();
        int position = 0;
        object? Next(Func<object?, object?>? persistent = null)
        {
            var u = new Unpickler(bytes, position, persistent);
            var value = u.Load();
            position = u.Position;
            return value;
        }
        var magic = Next();
        if (magic is not BigInteger m || m != BigInteger.Parse("119547037146038801333356", System.Globalization.CultureInfo.InvariantCulture))
            throw new InvalidDataException("not a PyTorch checkpoint: the pickle does not start with torch.save's magic number.");
        if (Next() is not long version || version != 1001) throw new InvalidDataException("unsupported legacy torch.save protocol version.");
        if (Next() is OrderedDictionary<object, object?> sysInfo && sysInfo.TryGetValue("little_endian", out var le) && le is false)
            throw new InvalidDataException("the checkpoint was written on a big-endian machine; not supported.");
        var lazy = new Dictionary<string, StorageReference>();
        var root = Next(pid => PersistentStorage(pid, key => storageBytes.TryGetValue(key, out var b) ? b
            : throw new InvalidDataException($"storage '{key}' is missing (truncated file?)."), lazy));
        if (Next() is not List<object?> keys) throw new InvalidDataException("the storage key list is missing (truncated file?).");
        foreach (var keyObject in keys)
        {
            string key = keyObject as string ?? throw new InvalidDataException("a storage key is not a string.");
            int elementSize = lazy.TryGetValue(key, out var r) ? r.ElementSize : 1;
            if (position + 8 > bytes.Length) throw new EndOfStreamException($"storage '{key}' is cut off.");
            long count = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(position));
            position += 8;
            long length = count * elementSize;
            if (count < 0 || position + length > bytes.Length)
                throw new EndOfStreamException($"storage '{key}' needs {length} bytes, but only {bytes.Length - position} remain.");
            storageBytes[key] = bytes.AsSpan(position, (int)length).ToArray();
            position += (int)length;
        }
        return root;
    }

    private static StorageReference PersistentStorage(object? pid, Func<string, byte[]> load, Dictionary<string, StorageReference>? seen = null)
    {
        if (pid is not object?[] t || t.Length < 5 || t[0] is not "storage")
            throw new UnsafePickleException($"unsupported persistent id {Describe(pid)}; only torch storages are allowed.");
        if (t[1] is not PyGlobal { Module: "torch" } type || !StorageTypes.TryGetValue(type.Name, out var st))
            throw new UnsafePickleException($"unsupported storage type {Describe(t[1])}.");
        string key = t[2] as string ?? throw new InvalidDataException("storage key is not a string.");
        if (t.Length > 5 && t[5] is not null) throw new InvalidDataException("storage views (legacy view_metadata) are not supported.");
        var reference = new StorageReference(key, st.Type, st.Size, load);
        if (seen is not null) seen[key] = reference;
        return reference;
    }

    private static string Describe(object? value) => value switch
    {
        null => "None",
        string s => $"'{s}'",
        object?[] tuple => "(" + string.Join(", ", tuple.Select(Describe)) + ")",
        _ => value.ToString() ?? value.GetType().Name,
    };

    /// <summary>A Python global the allow-list admitted.</summary>
    internal sealed record PyGlobal(string Module, string Name)
    {
        public override string ToString() => $"{Module}.{Name}";
    }

    internal sealed class StorageReference(string key, ScalarType type, int elementSize, Func<string, byte[]> load)
    {
        public string Key { get; } = key;
        public ScalarType Type { get; } = type;
        public int ElementSize { get; } = elementSize;
        public byte[] Bytes => load(Key);
    }

    /// <summary>A tensor described by the pickle; its data is read from the storage only when materialised.</summary>
    public sealed class TensorReference
    {
        internal TensorReference(StorageReference storage, long offset, long[] size, long[] stride)
        {
            Storage = storage;
            Offset = offset;
            Size = size;
            Stride = stride;
        }

        internal StorageReference Storage { get; }
        public long Offset { get; }
        public long[] Size { get; }
        public long[] Stride { get; }

        /// <summary>A new contiguous tensor with the described data.</summary>
        public Tensor Materialize()
        {
            byte[] data = Storage.Bytes;
            if (data.Length % Storage.ElementSize != 0) throw new InvalidDataException($"storage '{Storage.Key}' has a partial element.");
            long numel = data.Length / Storage.ElementSize;
            long last = Offset + Size.Select((s, i) => s == 0 ? 0 : (s - 1) * Stride[i]).Sum();
            if (Size.Any(s => s == 0)) return zeros(Size, Storage.Type);
            if (Offset < 0 || last >= numel)
                throw new InvalidDataException($"a tensor of shape [{string.Join(", ", Size)}] reads past the end of storage '{Storage.Key}' ({numel} elements; truncated file?).");
            using var flat = empty(numel, Storage.Type);
            flat.bytes = data;
            using var view = flat.as_strided(Size, Stride, Offset);
            return view.contiguous().clone();
        }

        public override string ToString() => $"tensor[{string.Join(", ", Size)}] {Storage.Type}";
    }

    /// <summary>The stack machine. It creates only: None, bool, long/BigInteger, double, string, byte[], tuples (object?[]),
    /// lists, ordered dicts, <see cref="PyGlobal"/> of the allow-list, storages and <see cref="TensorReference"/>s.</summary>
    private sealed class Unpickler(byte[] data, int start, Func<object?, object?>? persistentLoad)
    {
        private static readonly object Mark = new();
        private readonly List<object?> _stack = new();
        private readonly Dictionary<long, object?> _memo = new();
        private int _pos = start;

        public int Position => _pos;

        public object? Load()
        {
            while (true)
            {
                byte op = U8();
                switch (op)
                {
                    case 0x80: U8(); break; // PROTO
                    case 0x95: _pos += 8; break; // FRAME
                    case (byte)'.': return Pop(); // STOP
                    case (byte)'(': _stack.Add(Mark); break;
                    case (byte)'}': _stack.Add(new OrderedDictionary<object, object?>()); break;
                    case (byte)']': _stack.Add(new List<object?>()); break;
                    case (byte)')': _stack.Add(Array.Empty<object?>()); break;
                    case (byte)'N': _stack.Add(null); break;
                    case 0x88: _stack.Add(true); break;
                    case 0x89: _stack.Add(false); break;
                    case (byte)'J': _stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                    case (byte)'K': _stack.Add((long)U8()); break;
                    case (byte)'M': _stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                    case 0x8a: _stack.Add(Long(Take(U8()))); break; // LONG1
                    case 0x8b: _stack.Add(Long(Take(checked((int)BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))))); break; // LONG4
                    case (byte)'G': _stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;
                    case (byte)'X': _stack.Add(Encoding.UTF8.GetString(Take(checked((int)BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))))); break;
                    case 0x8c: _stack.Add(Encoding.UTF8.GetString(Take(U8()))); break; // SHORT_BINUNICODE
                    case 0x8d: _stack.Add(Encoding.UTF8.GetString(Take(checked((int)BinaryPrimitives.ReadInt64LittleEndian(Take(8)))))); break;
                    case (byte)'T': _stack.Add(Encoding.Latin1.GetString(Take(checked((int)BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))))); break;
                    case (byte)'U': _stack.Add(Encoding.Latin1.GetString(Take(U8()))); break;
                    case (byte)'B': _stack.Add(Take(checked((int)BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))).ToArray()); break;
                    case (byte)'C': _stack.Add(Take(U8()).ToArray()); break;
                    case (byte)'q': _memo[U8()] = Peek(); break; // BINPUT
                    case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Peek(); break;
                    case 0x94: _memo[_memo.Count] = Peek(); break; // MEMOIZE
                    case (byte)'h': _stack.Add(Memo(U8())); break; // BINGET
                    case (byte)'j': _stack.Add(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
                    case (byte)'0': Pop(); break;
                    case (byte)'2': _stack.Add(Peek()); break;
                    case (byte)'1': PopToMark(); break;
                    case (byte)'t': _stack.Add(PopToMark().ToArray()); break;
                    case 0x85: _stack.Add(new[] { Pop() }); break;
                    case 0x86: { var b = Pop(); var a = Pop(); _stack.Add(new[] { a, b }); break; }
                    case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); _stack.Add(new[] { a, b, c }); break; }
                    case (byte)'l': _stack.Add(PopToMark()); break;
                    case (byte)'d': { var items = PopToMark(); var d = new OrderedDictionary<object, object?>(); SetItems(d, items); _stack.Add(d); break; }
                    case (byte)'a': { var v = Pop(); AsList(Peek()).Add(v); break; }
                    case (byte)'e': { var items = PopToMark(); AsList(Peek()).AddRange(items); break; }
                    case (byte)'s': { var v = Pop(); var k = Pop(); SetItems(AsDict(Peek()), new List<object?> { k, v }); break; }
                    case (byte)'u': { var items = PopToMark(); SetItems(AsDict(Peek()), items); break; }
                    case (byte)'c': _stack.Add(Global(Line(), Line())); break;
                    case 0x93: { var name = Pop() as string; var module = Pop() as string; _stack.Add(Global(module ?? "?", name ?? "?")); break; }
                    case (byte)'R': { var args = Pop(); var callable = Pop(); _stack.Add(Call(callable, args as object?[] ?? throw new InvalidDataException("REDUCE arguments are not a tuple."))); break; }
                    case (byte)'b': Pop(); break; // BUILD: state of an OrderedDict (e.g. _metadata) or a tensor; nothing to run, ignored.
                    case (byte)'Q':
                        {
                            var pid = Pop();
                            _stack.Add(persistentLoad is null ? throw new UnsafePickleException("persistent ids are only allowed in a checkpoint's data pickle.") : persistentLoad(pid));
                            break;
                        }
                    default:
                        throw new UnsafePickleException(
                            $"pickle opcode 0x{op:x2} ('{(op is >= 32 and < 127 ? (char)op : '?')}') at byte {_pos - 1} is not supported by the restricted unpickler " +
                            "(it accepts only what torch.save writes for tensors, storages, dicts and lists).");
                }
            }
        }

        private static PyGlobal Global(string module, string name)
        {
            string full = $"{module}.{name}";
            if (AllowedGlobals.Contains(full)) return new PyGlobal(module, name);
            if (module == "torch" && StorageTypes.ContainsKey(name)) return new PyGlobal(module, name);
            throw new UnsafePickleException(
                $"the pickle references '{full}', which is not allowed: a checkpoint may only contain tensors, storages, (ordered) dicts, " +
                "lists and plain values. Loading it with Python's pickle would call that function. Nothing was executed. " +
                "If you trust the file, convert it to .safetensors in Python (safetensors.torch.save_file) and load that instead.");
        }

        private static object? Call(object? callable, object?[] args)
        {
            if (callable is not PyGlobal g) throw new UnsafePickleException($"REDUCE on {callable?.GetType().Name ?? "None"}: only allow-listed functions can be called.");
            switch (g.ToString())
            {
                case "collections.OrderedDict":
                    var d = new OrderedDictionary<object, object?>();
                    if (args.Length > 0 && args[0] is List<object?> pairs)
                        foreach (var p in pairs)
                            if (p is object?[] { Length: 2 } kv) d[kv[0] ?? "None"] = kv[1];
                    return d;
                case "torch._utils._rebuild_tensor":
                case "torch._utils._rebuild_tensor_v2":
                    if (args.Length < 4 || args[0] is not StorageReference storage)
                        throw new InvalidDataException($"{g} called with unexpected arguments.");
                    return new TensorReference(storage, ToLong(args[1]), Longs(args[2]), Longs(args[3]));
                case "torch._utils._rebuild_parameter":
                case "torch._utils._rebuild_parameter_with_state":
                    return args.Length > 0 && args[0] is TensorReference t ? t : throw new InvalidDataException($"{g} called without a tensor.");
                default:
                    throw new UnsafePickleException($"'{g}' cannot be called.");
            }
        }

        private static long ToLong(object? v) => v switch
        {
            long l => l,
            BigInteger b => (long)b,
            _ => throw new InvalidDataException($"expected an integer, got {v?.GetType().Name ?? "None"}."),
        };

        private static long[] Longs(object? v) => v is object?[] t ? t.Select(ToLong).ToArray() : throw new InvalidDataException("expected a tuple of integers.");

        private static object Long(ReadOnlySpan<byte> bytes)
        {
            var value = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
            return value >= long.MinValue && value <= long.MaxValue && bytes.Length <= 8 ? (long)value : value;
        }

        private static void SetItems(OrderedDictionary<object, object?> d, List<object?> items)
        {
            if (items.Count % 2 != 0) throw new InvalidDataException("odd number of items for a dict.");
            for (int i = 0; i < items.Count; i += 2) d[items[i] ?? "None"] = items[i + 1];
        }

        private static List<object?> AsList(object? o) => o as List<object?> ?? throw new InvalidDataException("APPEND to something that is not a list.");

        private static OrderedDictionary<object, object?> AsDict(object? o) =>
            o as OrderedDictionary<object, object?> ?? throw new InvalidDataException("SETITEM on something that is not a dict.");

        private object? Memo(long key) => _memo.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"memo key {key} is undefined.");

        private byte U8() => _pos < data.Length ? data[_pos++] : throw new EndOfStreamException("the pickle ends without a STOP opcode.");

        private ReadOnlySpan<byte> Take(int n)
        {
            if (n < 0 || _pos + n > data.Length) throw new EndOfStreamException("the pickle is cut off.");
            var span = data.AsSpan(_pos, n);
            _pos += n;
            return span;
        }

        private string Line()
        {
            int end = Array.IndexOf(data, (byte)'\n', _pos);
            if (end < 0) throw new EndOfStreamException("the pickle is cut off inside a GLOBAL opcode.");
            string s = Encoding.ASCII.GetString(data, _pos, end - _pos);
            _pos = end + 1;
            return s;
        }

        private object? Pop()
        {
            if (_stack.Count == 0) throw new InvalidDataException("pickle stack underflow.");
            var v = _stack[^1];
            _stack.RemoveAt(_stack.Count - 1);
            if (ReferenceEquals(v, Mark)) throw new InvalidDataException("unexpected MARK on the pickle stack.");
            return v;
        }

        private object? Peek() => _stack.Count > 0 ? _stack[^1] : throw new InvalidDataException("pickle stack underflow.");

        private List<object?> PopToMark()
        {
            int i = _stack.FindLastIndex(o => ReferenceEquals(o, Mark));
            if (i < 0) throw new InvalidDataException("no MARK on the pickle stack.");
            var items = _stack.GetRange(i + 1, _stack.Count - i - 1);
            _stack.RemoveRange(i, _stack.Count - i);
            return items;
        }
    }
}
