using System.Numerics;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Weights.Formats;

/// <summary>
/// Torch's allow-list: the only place that decides which Python globals a checkpoint may name. Accepted are
/// <c>collections.OrderedDict</c>, the tensor/parameter rebuild functions of <c>torch._utils</c> and the typed storage
/// classes (<c>torch.FloatStorage</c>, …), all emulated here; any other global (<c>os.system</c>, <c>builtins.eval</c>,
/// a custom class, numpy scalars, …) raises <see cref="UnsafePickleException"/> when the opcode naming it is read.
/// </summary>
/// <remarks>Storages are only described here; <see cref="TorchArchive.CheckStorage"/> checks them against the file.</remarks>
internal sealed class TorchResolver : IPickleResolver
{
    internal static readonly IReadOnlyDictionary<string, (ScalarType Type, int Size)> StorageTypes = new Dictionary<string, (ScalarType, int)>
    {
        ["FloatStorage"] = (ScalarType.Float32, 4), ["DoubleStorage"] = (ScalarType.Float64, 8),
        ["HalfStorage"] = (ScalarType.Float16, 2), ["BFloat16Storage"] = (ScalarType.BFloat16, 2),
        ["LongStorage"] = (ScalarType.Int64, 8), ["IntStorage"] = (ScalarType.Int32, 4),
        ["ShortStorage"] = (ScalarType.Int16, 2), ["CharStorage"] = (ScalarType.Int8, 1),
        ["ByteStorage"] = (ScalarType.Byte, 1), ["BoolStorage"] = (ScalarType.Bool, 1),
    };

    private static readonly HashSet<string> Callables = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    };

    private readonly Dictionary<string, StorageReference> _storages = new(StringComparer.Ordinal);

    /// <summary>The allow-list, for error messages and documentation.</summary>
    public static IEnumerable<string> AllowedGlobalNames =>
        Callables.Concat(StorageTypes.Keys.Select(k => "torch." + k)).OrderBy(n => n, StringComparer.Ordinal);

    /// <summary>The storages the pickle referred to, by key.</summary>
    public IReadOnlyDictionary<string, StorageReference> Storages => _storages;

    public object Global(string module, string name)
    {
        string full = $"{module}.{name}";
        if (Callables.Contains(full) || (module == "torch" && StorageTypes.ContainsKey(name))) return new PyGlobal(module, name);
        throw new UnsafePickleException(
            $"the pickle references '{full}', which is not allowed: a checkpoint may only contain tensors, storages, (ordered) dicts, " +
            "lists and plain values. Loading it with Python's pickle would call that function. Nothing was executed. " +
            "If you trust the file, convert it to .safetensors in Python (safetensors.torch.save_file) and load that instead.");
    }

    public object? Call(object? callable, object?[] args)
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

    /// <summary>Both torch.save formats name a storage as ('storage', type, key, location, element count[, view metadata]).</summary>
    public object? PersistentLoad(object? pid)
    {
        if (pid is not object?[] t || t.Length < 5 || t[0] is not "storage")
            throw new UnsafePickleException($"unsupported persistent id {Describe(pid)}; only torch storages are allowed.");
        if (t[1] is not PyGlobal { Module: "torch" } type || !StorageTypes.TryGetValue(type.Name, out var st))
            throw new UnsafePickleException($"unsupported storage type {Describe(t[1])}.");
        string key = t[2] as string ?? throw new InvalidDataException("a storage key is not a string.");
        if (t.Length > 5 && t[5] is not null) throw new InvalidDataException($"storage '{key}' is a view (legacy view_metadata); not supported.");
        long elements = ToLong(t[4]);
        if (elements < 0) throw new InvalidDataException($"storage '{key}' declares {elements} elements.");
        if (_storages.TryGetValue(key, out var known))
            return known.Type == st.Type && known.Elements == elements ? known
                : throw new InvalidDataException($"storage '{key}' is declared twice with different types or sizes.");
        return _storages[key] = new StorageReference(key, st.Type, st.Size, elements);
    }

    private static long ToLong(object? v) => v switch
    {
        long l => l,
        BigInteger b => throw new InvalidDataException($"the integer {b} does not fit 64 bits."),
        _ => throw new InvalidDataException($"expected an integer, got {v?.GetType().Name ?? "None"}."),
    };

    private static long[] Longs(object? v) => v is object?[] t ? t.Select(ToLong).ToArray() : throw new InvalidDataException("expected a tuple of integers.");

    private static string Describe(object? value) => value switch
    {
        null => "None",
        string s => $"'{s}'",
        object?[] tuple => "(" + string.Join(", ", tuple.Select(Describe)) + ")",
        _ => value.ToString() ?? value.GetType().Name,
    };
}

/// <summary>For the pickles around a legacy checkpoint's data (magic number, version, system info, storage keys):
/// plain values only, no globals and no storages.</summary>
internal sealed class PlainValueResolver : IPickleResolver
{
    public static PlainValueResolver Instance { get; } = new();

    public object Global(string module, string name) =>
        throw new UnsafePickleException($"the pickle references '{module}.{name}' where a checkpoint holds only plain values; not allowed. Nothing was executed.");

    public object? Call(object? callable, object?[] args) => throw new UnsafePickleException("REDUCE where a checkpoint holds only plain values; not allowed.");

    public object? PersistentLoad(object? pid) => throw new UnsafePickleException("persistent ids are only allowed in a checkpoint's data pickle.");
}

/// <summary>A Python global the allow-list admitted.</summary>
internal sealed record PyGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A storage named by the pickle: its key in the archive, element type and declared element count.</summary>
internal sealed record StorageReference(string Key, ScalarType Type, int ElementSize, long Elements)
{
    /// <summary>Bytes the storage declares; overflow is refused.</summary>
    public long ByteLength => Checked(() => Elements * ElementSize, $"storage '{Key}' declares {Elements} elements");

    internal static long Checked(Func<long> compute, string what)
    {
        try
        {
            return checked(compute());
        }
        catch (OverflowException)
        {
            throw new InvalidDataException($"{what}: the size overflows 64 bits.");
        }
    }
}

/// <summary>A tensor described by the pickle: a strided view of a storage, read only when materialised.</summary>
internal sealed class TensorReference(StorageReference storage, long offset, long[] size, long[] stride)
{
    public StorageReference Storage { get; } = storage;
    public long Offset { get; } = offset;
    public long[] Size { get; } = size;
    public long[] Stride { get; } = stride;

    /// <summary>Checks the view against its storage (no negative sizes, strides or offset; every element it reads lies
    /// inside the storage; 64-bit arithmetic) and returns the bytes the materialised tensor takes.</summary>
    /// <exception cref="InvalidDataException">The view is malformed; the message names <paramref name="name"/>.</exception>
    public long Check(string name)
    {
        string what = $"tensor '{name}' (shape [{string.Join(", ", Size)}], strides [{string.Join(", ", Stride)}], offset {Offset}, storage '{Storage.Key}')";
        if (Size.Length != Stride.Length) throw new InvalidDataException($"{what} has {Size.Length} sizes but {Stride.Length} strides.");
        if (Size.Any(s => s < 0) || Stride.Any(s => s < 0) || Offset < 0)
            throw new InvalidDataException($"{what} has a negative size, stride or offset, which torch.save never writes.");
        long elements = StorageReference.Checked(() => Size.Aggregate(1L, (a, b) => checked(a * b)), what);
        if (elements == 0) return 0;
        // The last element the view reads is offset + Σ (size_i − 1)·stride_i; it must lie inside the storage.
        long extent = StorageReference.Checked(() => Size.Select((s, i) => checked((s - 1) * Stride[i])).Aggregate(Offset + 1, (a, b) => checked(a + b)), what);
        if (extent > Storage.Elements)
            throw new InvalidDataException($"{what} reads up to element {extent} of a storage of {Storage.Elements} elements.");
        return StorageReference.Checked(() => elements * Storage.ElementSize, what);
    }

    /// <summary>A new contiguous tensor with the described data, taken from <paramref name="storageData"/> (the whole
    /// storage, flat); call <see cref="Check"/> first.</summary>
    public Tensor Materialize(Tensor storageData)
    {
        var result = empty(Size, Storage.Type);
        if (Size.Any(s => s == 0)) return result;
        using var view = storageData.as_strided(Size, Stride, Offset);
        result.copy_(view);
        return result;
    }

    public override string ToString() => $"tensor[{string.Join(", ", Size)}] {Storage.Type}";
}
