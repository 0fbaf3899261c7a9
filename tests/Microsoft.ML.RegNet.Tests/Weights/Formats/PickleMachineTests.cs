using System.Numerics;
using System.Text;
using Microsoft.ML.RegNet.Weights.Formats;

namespace Microsoft.ML.RegNet.Tests.Weights.Formats;

/// <summary>The restricted unpickler on byte strings built by hand or written by Python's pickle (hex below).</summary>
[TestClass]
public sealed class PickleMachineTests
{
    // Python: shared = [7]; pickle.dumps({'ints': [0, 255, 256, 65535, 65536, -1, 2**31-1, 2**40, -(2**63), 2**70],
    //   'float': 1.5, 'flags': (True, False, None), 'text': 'héllo', 'bytes': b'xy', 't1': (1,), 't2': (1, 2),
    //   't3': (1, 2, 3), 't4': (1, 2, 3, 4), 'empty': (), 'p': shared, 'q': shared}, protocol=P)
    // Protocol 2: BINUNICODE, BINPUT/BINGET, and bytes as _codecs.encode('xy', 'latin1') (GLOBAL + REDUCE).
    private const string Protocol2 =
        "80027d7100285804000000696e747371015d7102284b004bff4d00014dffff4a000001004affffffff4affffff7f8a060000000000018a0800000000000000808a09000000000000000040655805000000666c6f61747103473ff80000000000005805000000666c616773710488894e8771055804000000746578747106580600000068c3a96c6c6f7107580500000062797465737108635f636f646563730a656e636f64650a710958020000007879710a58060000006c6174696e31710b86710c52710d58020000007431710e4b0185710f5802000000743271104b014b028671115802000000743371124b014b024b03877113580200000074347114284b014b024b034b047471155805000000656d70747971162958010000007071175d71184b076158010000007171196818752e";

    // Protocol 4: a FRAME, SHORT_BINUNICODE, MEMOIZE, SHORT_BINBYTES.
    private const string Protocol4 =
        "800495ca000000000000007d94288c04696e7473945d94284b004bff4d00014dffff4a000001004affffffff4affffff7f8a060000000000018a0800000000000000808a09000000000000000040658c05666c6f617494473ff80000000000008c05666c6167739488894e87948c0474657874948c0668c3a96c6c6f948c0562797465739443027879948c027431944b0185948c027432944b014b0286948c027433944b014b024b0387948c02743494284b014b024b034b0474948c05656d70747994298c0170945d944b07618c0171946814752e";

    [TestMethod]
    [DataRow(Protocol2, 2)]
    [DataRow(Protocol4, 4)]
    public void PythonPicklesOfProtocolsTwoAndFourDecodeToTheSameValues(string hex, int protocol)
    {
        var resolver = new RecordingResolver();
        using var stream = new MemoryStream(Convert.FromHexString(hex));
        var d = (OrderedDictionary<object, object?>)new PickleMachine(stream, resolver).Load()!;

        Assert.AreEqual(stream.Length, stream.Position, "the machine stops right after STOP");
        CollectionAssert.AreEqual(new object[] { "ints", "float", "flags", "text", "bytes", "t1", "t2", "t3", "t4", "empty", "p", "q" }, d.Keys.ToArray(), "insertion order");
        var ints = (List<object?>)d["ints"]!;
        CollectionAssert.AreEqual(new object[] { 0L, 255L, 256L, 65535L, 65536L, -1L, (long)int.MaxValue, 1L << 40, long.MinValue }, ints.Take(9).ToArray());
        Assert.AreEqual(BigInteger.Pow(2, 70), ints[9]);
        Assert.AreEqual(1.5, d["float"]);
        CollectionAssert.AreEqual(new object?[] { true, false, null }, (object?[])d["flags"]!);
        Assert.AreEqual("héllo", d["text"]);
        CollectionAssert.AreEqual("xy"u8.ToArray(), (byte[])d["bytes"]!);
        CollectionAssert.AreEqual(new object[] { 1L }, (object?[])d["t1"]!);
        CollectionAssert.AreEqual(new object[] { 1L, 2L }, (object?[])d["t2"]!);
        CollectionAssert.AreEqual(new object[] { 1L, 2L, 3L }, (object?[])d["t3"]!);
        CollectionAssert.AreEqual(new object[] { 1L, 2L, 3L, 4L }, (object?[])d["t4"]!);
        Assert.IsEmpty((object?[])d["empty"]!);
        Assert.AreSame(d["p"], d["q"], "the memo returns the same object");
        CollectionAssert.AreEqual(protocol == 2 ? new[] { "_codecs.encode" } : Array.Empty<string>(), resolver.Globals);
    }

    [TestMethod]
    public void HandBuiltOpcodesNotWrittenByPythonForThoseValues()
    {
        var p = new PickleBytes()
            .Op(0x80).U8(4)
            .Op(']')                                       // EMPTY_LIST
            .Op('r').U32(1000)                             // LONG_BINPUT 1000
            .Op('(')                                       // MARK
            .Op(0x8b).U32(2).Raw(0xfe, 0xff)               // LONG4: -2
            .Op('T').U32(3).Raw("abc"u8)                   // BINSTRING (latin-1)
            .Op('U').U8(1).Raw(0xe9)                       // SHORT_BINSTRING: é in latin-1
            .Op(0x8d).U64(2).Raw("ok"u8)                   // BINUNICODE8
            .Op('B').U32(3).Raw(1, 2, 3)                   // BINBYTES
            .Op('K').U8(9).Op('2')                         // DUP: two 9s
            .Op('K').U8(5).Op('0')                         // POP drops the 5
            .Op('(').Op('K').U8(6).Op('1')                 // POP_MARK drops 6 and its mark
            .Op('e')                                       // APPENDS
            .Op('j').U32(1000)                             // LONG_BINGET: the same list again
            .Op('(').Op('K').U8(1).Op('l')                 // LIST [1]
            .Op('a')                                       // APPEND it to the memoised list
            .Op('(').Op(0x8c).U8(1).Raw("k"u8).Op('N').Op('d') // DICT {'k': None}
            .Op(0x8c).U8(1).Raw("z"u8).Op('K').U8(3).Op('s')    // SETITEM z=3
            .Op(0x86)                                      // TUPLE2 (list, dict)
            .Op('.');
        var (value, resolver) = Run(p.ToArray());

        var pair = (object?[])value!;
        var list = (List<object?>)pair[0]!;
        Assert.HasCount(8, list);
        CollectionAssert.AreEqual(new object?[] { -2L, "abc", "é", "ok" }, list.Take(4).ToArray());
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, (byte[])list[4]!);
        CollectionAssert.AreEqual(new object?[] { 9L, 9L }, list.Skip(5).Take(2).ToArray());
        CollectionAssert.AreEqual(new object?[] { 1L }, (List<object?>)list[7]!);
        var dict = (OrderedDictionary<object, object?>)pair[1]!;
        CollectionAssert.AreEqual(new object[] { "k", "z" }, dict.Keys.ToArray());
        Assert.IsNull(dict["k"]);
        Assert.AreEqual(3L, dict["z"]);
        Assert.IsEmpty(resolver.Globals);
    }

    [TestMethod]
    public void GlobalsCallsAndPersistentIdsGoThroughTheResolver()
    {
        var p = new PickleBytes()
            .Op(0x80).U8(2)
            .Op('c').Raw("collections\nOrderedDict\n"u8).Op(')').Op('R')      // GLOBAL + REDUCE
            .Op(0x8c).U8(3).Raw("mod"u8).Op(0x8c).U8(4).Raw("name"u8).Op(0x93) // STACK_GLOBAL
            .Op(0x8c).U8(3).Raw("pid"u8).Op('Q')                              // BINPERSID
            .Op(0x87).Op('.');
        var (value, resolver) = Run(p.ToArray());

        var t = (object?[])value!;
        Assert.AreEqual("called collections.OrderedDict with 0 args", t[0]);
        Assert.AreEqual("mod.name", t[1]);
        Assert.AreEqual("persistent pid", t[2]);
        CollectionAssert.AreEqual(new[] { "collections.OrderedDict", "mod.name" }, resolver.Globals);
    }

    [TestMethod]
    [DataRow((byte)'i', DisplayName = "INST")]
    [DataRow((byte)'o', DisplayName = "OBJ")]
    [DataRow((byte)0x81, DisplayName = "NEWOBJ")]
    [DataRow((byte)0x92, DisplayName = "NEWOBJ_EX")]
    public void OpcodesOutsideTorchSaveAreRefusedWithTheirOffset(byte op)
    {
        var bytes = new PickleBytes().Op(0x80).U8(2).Op('N').Op('N').Op(op).Op('.').ToArray();
        var e = Assert.ThrowsExactly<UnsafePickleException>(() => Run(bytes));
        StringAssert.Contains(e.Message, $"0x{op:x2}");
        StringAssert.Contains(e.Message, "at byte 4");
    }

    [TestMethod]
    [DataRow("os", "system")]
    [DataRow("builtins", "eval")]
    [DataRow("numpy.core.multiarray", "scalar")]
    [DataRow("torch", "Tensor")]
    public void TheTorchAllowListRefusesOtherGlobalsByBothOpcodes(string module, string name)
    {
        var global = new PickleBytes().Op(0x80).U8(2).Op('c').Raw(Encoding.ASCII.GetBytes($"{module}\n{name}\n")).Op('.').ToArray();
        var stackGlobal = new PickleBytes().Op(0x80).U8(4)
            .Op(0x8c).U8(module.Length).Raw(Encoding.ASCII.GetBytes(module))
            .Op(0x8c).U8(name.Length).Raw(Encoding.ASCII.GetBytes(name)).Op(0x93).Op('.').ToArray();
        foreach (var bytes in new[] { global, stackGlobal })
        {
            var e = Assert.ThrowsExactly<UnsafePickleException>(() => new PickleMachine(new MemoryStream(bytes), new TorchResolver()).Load());
            StringAssert.Contains(e.Message, $"'{module}.{name}'");
        }
    }

    [TestMethod]
    public void TheTorchAllowListAdmitsItsNamesAndBuildsOrderedDicts()
    {
        // collections.OrderedDict([('a', 1)]) as REDUCE with a list of pairs.
        var bytes = new PickleBytes().Op(0x80).U8(2)
            .Op('c').Raw("collections\nOrderedDict\n"u8)
            .Op(']').Op(0x8c).U8(1).Raw("a"u8).Op('K').U8(1).Op(0x86).Op('a').Op(0x85).Op('R')
            .Op('.').ToArray();
        var d = (OrderedDictionary<object, object?>)new PickleMachine(new MemoryStream(bytes), new TorchResolver()).Load()!;
        Assert.AreEqual(1L, d["a"]);
    }

    [TestMethod]
    public void PlainValuePicklesRefuseEveryGlobal()
    {
        var bytes = new PickleBytes().Op(0x80).U8(2).Op('c').Raw("collections\nOrderedDict\n"u8).Op('.').ToArray();
        Assert.ThrowsExactly<UnsafePickleException>(() => new PickleMachine(new MemoryStream(bytes), PlainValueResolver.Instance).Load());
    }

    [TestMethod]
    public void LengthsBeyondTheDataAreRefusedBeforeAllocating()
    {
        // BINUNICODE8 claiming 2^62 bytes: allocating first would throw OutOfMemoryException instead.
        var huge = new PickleBytes().Op(0x80).U8(4).Op(0x8d).U64(1UL << 62).Raw("x"u8).ToArray();
        var e = Assert.ThrowsExactly<EndOfStreamException>(() => Run(huge));
        StringAssert.Contains(e.Message, "cut off");
        var noStop = new PickleBytes().Op(0x80).U8(2).Op('N').ToArray();
        Assert.ThrowsExactly<EndOfStreamException>(() => Run(noStop));
    }

    [TestMethod]
    public void MalformedStacksAreInvalidData()
    {
        Assert.ThrowsExactly<InvalidDataException>(() => Run(new PickleBytes().Op('0').Op('.').ToArray()), "POP on an empty stack");
        Assert.ThrowsExactly<InvalidDataException>(() => Run(new PickleBytes().Op('t').Op('.').ToArray()), "TUPLE without MARK");
        Assert.ThrowsExactly<InvalidDataException>(() => Run(new PickleBytes().Op('h').U8(3).Op('.').ToArray()), "BINGET of an unset memo key");
        Assert.ThrowsExactly<InvalidDataException>(() => Run(new PickleBytes().Op('N').Op('K').U8(1).Op('a').Op('.').ToArray()), "APPEND to None");
        Assert.ThrowsExactly<InvalidDataException>(() => Run(new PickleBytes().Op('(').Op('N').Op('d').Op('.').ToArray()), "DICT with an odd item count");
        Assert.ThrowsExactly<InvalidDataException>(() => Run(new PickleBytes().Op('(').Op('.').ToArray()), "STOP with a MARK on top");
        var longName = new PickleBytes().Op('c').Raw(Encoding.ASCII.GetBytes(new string('m', 2000) + "\nx\n")).Op('.').ToArray();
        Assert.ThrowsExactly<InvalidDataException>(() => Run(longName), "GLOBAL names are bounded");
    }

    private static (object? Value, RecordingResolver Resolver) Run(byte[] bytes)
    {
        var resolver = new RecordingResolver();
        return (new PickleMachine(new MemoryStream(bytes), resolver).Load(), resolver);
    }

    /// <summary>Names what it is asked for; implements only <c>_codecs.encode</c>, which protocol 2 uses for bytes.</summary>
    private sealed class RecordingResolver : IPickleResolver
    {
        public List<string> Globals { get; } = new();

        public object Global(string module, string name)
        {
            Globals.Add($"{module}.{name}");
            return $"{module}.{name}";
        }

        public object? Call(object? callable, object?[] args) => callable switch
        {
            "_codecs.encode" => Encoding.Latin1.GetBytes((string)args[0]!),
            _ => $"called {callable} with {args.Length} args",
        };

        public object? PersistentLoad(object? pid) => $"persistent {pid}";
    }

    private sealed class PickleBytes
    {
        private readonly List<byte> _bytes = new();

        public PickleBytes Op(char op) => Op((byte)op);

        public PickleBytes Op(byte op)
        {
            _bytes.Add(op);
            return this;
        }

        public PickleBytes U8(int value) => Op((byte)value);

        public PickleBytes U32(uint value) => Raw(BitConverter.GetBytes(value));

        public PickleBytes U64(ulong value) => Raw(BitConverter.GetBytes(value));

        public PickleBytes Raw(params byte[] bytes)
        {
            _bytes.AddRange(bytes);
            return this;
        }

        public PickleBytes Raw(ReadOnlySpan<byte> bytes)
        {
            _bytes.AddRange(bytes.ToArray());
            return this;
        }

        public byte[] ToArray() => _bytes.ToArray();
    }
}
