using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace Microsoft.ML.RegNet.Weights.Formats;

/// <summary>Decides what a pickle's globals, calls and persistent ids become. The machine itself constructs nothing else.</summary>
internal interface IPickleResolver
{
    /// <summary>GLOBAL / STACK_GLOBAL: the object standing for <c>module.name</c>; throws <see cref="UnsafePickleException"/> to refuse it.</summary>
    object Global(string module, string name);

    /// <summary>REDUCE: calls <paramref name="callable"/> (something <see cref="Global"/> returned) with <paramref name="args"/>.</summary>
    object? Call(object? callable, object?[] args);

    /// <summary>BINPERSID: the object a persistent id refers to.</summary>
    object? PersistentLoad(object? pid);
}

/// <summary>
/// A pickle stack machine for the opcodes <c>torch.save</c> emits (protocols 2–4). It builds only None, bool,
/// long/BigInteger, double, string, byte[], tuples (object?[]), lists and ordered dicts itself; everything named by the
/// pickle goes through the <see cref="IPickleResolver"/>. Nothing is executed, and every length is checked against the
/// bytes that remain before anything is allocated for it.
/// </summary>
internal sealed class PickleMachine(Stream input, IPickleResolver resolver)
{
    // Module and attribute names in a GLOBAL opcode; real ones are a few dozen bytes.
    private const int MaxLineBytes = 1024;
    private static readonly object Mark = new();
    private readonly List<object?> _stack = new();
    private readonly Dictionary<long, object?> _memo = new();

    /// <summary>Runs until STOP and returns the pickled object; the stream is left just after the STOP opcode.</summary>
    public object? Load()
    {
        while (true)
        {
            long at = input.Position;
            byte op = U8();
            if (op == (byte)'.') return Pop(); // STOP
            if (!PushValue(op) && !BuildContainer(op) && !StackOrMemo(op) && !Resolve(op))
                throw new UnsafePickleException(
                    $"pickle opcode 0x{op:x2} ('{(op is >= 32 and < 127 ? (char)op : '?')}') at byte {at} is not supported by the restricted unpickler " +
                    "(it accepts only what torch.save writes for tensors, storages, dicts and lists).");
        }
    }

    private bool PushValue(byte op)
    {
        object? value;
        switch (op)
        {
            case 0x80: U8(); return true; // PROTO
            case 0x95: Take(8); return true; // FRAME: frames are only a read-ahead hint
            case (byte)'N': value = null; break;
            case 0x88: value = true; break;
            case 0x89: value = false; break;
            case (byte)'J': value = (long)BinaryPrimitives.ReadInt32LittleEndian(Take(4)); break; // BININT
            case (byte)'K': value = (long)U8(); break; // BININT1
            case (byte)'M': value = (long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2)); break; // BININT2
            case 0x8a: value = Long(Take(U8())); break; // LONG1
            case 0x8b: value = Long(Take(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG4
            case (byte)'G': value = BinaryPrimitives.ReadDoubleBigEndian(Take(8)); break; // BINFLOAT
            case (byte)'X': value = Encoding.UTF8.GetString(Take(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
            case 0x8c: value = Encoding.UTF8.GetString(Take(U8())); break; // SHORT_BINUNICODE
            case 0x8d: value = Encoding.UTF8.GetString(Take(BinaryPrimitives.ReadInt64LittleEndian(Take(8)))); break;
            case (byte)'T': value = Encoding.Latin1.GetString(Take(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
            case (byte)'U': value = Encoding.Latin1.GetString(Take(U8())); break;
            case (byte)'B': value = Take(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))); break; // BINBYTES
            case (byte)'C': value = Take(U8()); break; // SHORT_BINBYTES
            default: return false;
        }
        _stack.Add(value);
        return true;
    }

    private bool BuildContainer(byte op)
    {
        switch (op)
        {
            case (byte)'(': _stack.Add(Mark); break;
            case (byte)'}': _stack.Add(new OrderedDictionary<object, object?>()); break;
            case (byte)']': _stack.Add(new List<object?>()); break;
            case (byte)')': _stack.Add(Array.Empty<object?>()); break;
            case (byte)'t': _stack.Add(PopToMark().ToArray()); break; // TUPLE
            case 0x85: _stack.Add(new[] { Pop() }); break; // TUPLE1
            case 0x86: { var b = Pop(); var a = Pop(); _stack.Add(new[] { a, b }); break; }
            case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); _stack.Add(new[] { a, b, c }); break; }
            case (byte)'l': _stack.Add(PopToMark()); break; // LIST
            case (byte)'d': { var d = new OrderedDictionary<object, object?>(); SetItems(d, PopToMark()); _stack.Add(d); break; }
            case (byte)'a': { var v = Pop(); AsList(Peek()).Add(v); break; } // APPEND
            case (byte)'e': { var items = PopToMark(); AsList(Peek()).AddRange(items); break; } // APPENDS
            case (byte)'s': { var v = Pop(); var k = Pop(); SetItems(AsDict(Peek()), [k, v]); break; } // SETITEM
            case (byte)'u': { var items = PopToMark(); SetItems(AsDict(Peek()), items); break; } // SETITEMS
            case (byte)'b': Pop(); break; // BUILD: the state of an OrderedDict (_metadata) or a tensor; nothing to run, ignored.
            default: return false;
        }
        return true;
    }

    private bool StackOrMemo(byte op)
    {
        switch (op)
        {
            case (byte)'q': _memo[U8()] = Peek(); break; // BINPUT
            case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Peek(); break; // LONG_BINPUT
            case 0x94: _memo[_memo.Count] = Peek(); break; // MEMOIZE
            case (byte)'h': _stack.Add(Memo(U8())); break; // BINGET
            case (byte)'j': _stack.Add(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG_BINGET
            case (byte)'0': Pop(); break; // POP
            case (byte)'2': _stack.Add(Peek()); break; // DUP
            case (byte)'1': PopToMark(); break; // POP_MARK
            default: return false;
        }
        return true;
    }

    private bool Resolve(byte op)
    {
        switch (op)
        {
            case (byte)'c': { string module = Line(); _stack.Add(resolver.Global(module, Line())); break; } // GLOBAL
            case 0x93: { var name = Pop() as string; var module = Pop() as string; _stack.Add(resolver.Global(module ?? "?", name ?? "?")); break; }
            case (byte)'R': // REDUCE
                {
                    var args = Pop() as object?[] ?? throw new InvalidDataException("REDUCE arguments are not a tuple.");
                    _stack.Add(resolver.Call(Pop(), args));
                    break;
                }
            case (byte)'Q': _stack.Add(resolver.PersistentLoad(Pop())); break; // BINPERSID
            default: return false;
        }
        return true;
    }

    private static object Long(byte[] bytes)
    {
        var value = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        if (bytes.Length <= 8) return (long)value; // a conditional expression would widen this to BigInteger
        return value;
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

    private byte U8()
    {
        int b = input.ReadByte();
        return b >= 0 ? (byte)b : throw new EndOfStreamException("the pickle ends without a STOP opcode.");
    }

    /// <summary>The next <paramref name="count"/> bytes; a length beyond the end of the data is refused before allocating.</summary>
    private byte[] Take(long count)
    {
        if (count < 0 || count > input.Length - input.Position)
            throw new EndOfStreamException($"the pickle is cut off: an opcode at byte {input.Position} asks for {count} bytes, {input.Length - input.Position} remain.");
        var bytes = new byte[count];
        input.ReadExactly(bytes);
        return bytes;
    }

    private string Line()
    {
        var bytes = new List<byte>();
        for (int b = U8(); b != '\n'; b = U8())
        {
            if (bytes.Count == MaxLineBytes) throw new InvalidDataException($"a GLOBAL opcode names something longer than {MaxLineBytes} bytes.");
            bytes.Add((byte)b);
        }
        return Encoding.ASCII.GetString(bytes.ToArray());
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
