using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Microsoft.ML.RegNet.Tests.Weights;

/// <summary>Writes small torch.save and safetensors files byte by byte, so tests can declare whatever a hostile file could.</summary>
internal static class HostileFiles
{
    /// <summary>One tensor of a hand-written state dict: a view of float32 storage '0'.</summary>
    public sealed record View(long[] Size, long[] Stride, long Offset = 0);

    /// <summary>A zip-format torch.save file whose state dict holds <paramref name="view"/> under 'weight', over a storage
    /// that declares <paramref name="declaredElements"/> floats and holds <paramref name="storedElements"/>.</summary>
    public static byte[] TorchZip(View view, long declaredElements, int storedElements)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            Add(zip, "archive/data.pkl", StateDictPickle(view, declaredElements));
            Add(zip, "archive/byteorder", "little"u8.ToArray());
            Add(zip, "archive/data/0", Floats(storedElements));
        }
        return buffer.ToArray();
    }

    /// <summary>A legacy (pre-1.6) torch.save file with one storage whose header declares <paramref name="declaredElements"/>
    /// floats, followed by <paramref name="storedElements"/> of them.</summary>
    public static byte[] TorchLegacy(View view, long declaredElements, int storedElements)
    {
        var p = new Pickle();
        p.Proto().Long1(BigIntegerBytes("119547037146038801333356")).Stop(); // magic number
        p.Proto().Int(1001).Stop();
        p.Proto().Op('}').Stop(); // sys_info
        var bytes = new List<byte>(p.Bytes);
        bytes.AddRange(StateDictPickle(view, declaredElements));
        bytes.AddRange(new Pickle().Proto().Op(']').Str("0").Op('a').Stop().Bytes);
        var count = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(count, declaredElements);
        bytes.AddRange(count);
        bytes.AddRange(Floats(storedElements));
        return bytes.ToArray();
    }

    /// <summary>{'weight': _rebuild_tensor_v2(storage '0', offset, size, stride, False, OrderedDict())}, as torch.save writes it.</summary>
    public static byte[] StateDictPickle(View view, long declaredElements)
    {
        var p = new Pickle().Proto().Op('}').Str("weight").Global("torch._utils", "_rebuild_tensor_v2").Op('(');
        p.Op('(').Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(declaredElements).Op('t').Op('Q');
        p.Int(view.Offset).Op('(');
        foreach (long s in view.Size) p.Int(s);
        p.Op('t').Op('(');
        foreach (long s in view.Stride) p.Int(s);
        p.Op('t').Op(0x89).Global("collections", "OrderedDict").Op(')').Op('R').Op('t').Op('R').Op('s');
        return p.Stop().Bytes;
    }

    /// <summary>A safetensors file with the given JSON header (its length word: the header's own unless <paramref name="headerLength"/>)
    /// and <paramref name="dataBytes"/> bytes of data.</summary>
    public static byte[] SafetensorsFile(string header, int dataBytes, long? headerLength = null)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        var file = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteInt64LittleEndian(file, headerLength ?? json.Length);
        json.CopyTo(file, 8);
        return file;
    }

    /// <summary>Sets the compressed and uncompressed sizes of <paramref name="entry"/> in its local and central zip headers.</summary>
    public static void ForgeZipEntrySize(byte[] zip, string entry, uint size)
    {
        byte[] name = Encoding.UTF8.GetBytes(entry);
        for (int i = 0; i + 46 < zip.Length; i++)
        {
            uint signature = BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(i));
            (int nameAt, int sizesAt) = signature switch { 0x04034b50 => (30, 18), 0x02014b50 => (46, 20), _ => (-1, -1) };
            if (nameAt < 0 || !zip.AsSpan(i + nameAt).StartsWith(name)) continue;
            BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(i + sizesAt), size);
            BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(i + sizesAt + 4), size);
        }
    }

    /// <summary>0, 1, 2, … as little-endian float32.</summary>
    private static byte[] Floats(int count)
    {
        var bytes = new byte[4 * count];
        for (int i = 0; i < count; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), i);
        return bytes;
    }

    private static void Add(ZipArchive zip, string name, byte[] content)
    {
        using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
        s.Write(content);
    }

    private static byte[] BigIntegerBytes(string value) =>
        System.Numerics.BigInteger.Parse(value, System.Globalization.CultureInfo.InvariantCulture).ToByteArray();

    /// <summary>Emits pickle opcodes (protocol 2).</summary>
    private sealed class Pickle
    {
        private readonly List<byte> _bytes = new();

        public byte[] Bytes => _bytes.ToArray();

        public Pickle Op(char op) => Op((byte)op);

        public Pickle Op(byte op)
        {
            _bytes.Add(op);
            return this;
        }

        public Pickle Proto() => Op(0x80).Op(2);

        public Pickle Stop() => Op('.');

        public Pickle Str(string s)
        {
            byte[] utf8 = Encoding.UTF8.GetBytes(s);
            Op('X').Le32((uint)utf8.Length);
            _bytes.AddRange(utf8);
            return this;
        }

        public Pickle Global(string module, string name)
        {
            _bytes.AddRange(Encoding.ASCII.GetBytes($"c{module}\n{name}\n"));
            return this;
        }

        /// <summary>BININT for 32-bit values, else LONG1 with 8 bytes.</summary>
        public Pickle Int(long v)
        {
            if (v is >= int.MinValue and <= int.MaxValue) return Op('J').Le32((uint)(int)v);
            var b = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(b, v);
            return Long1(b);
        }

        public Pickle Long1(byte[] littleEndian)
        {
            Op(0x8a).Op((byte)littleEndian.Length);
            _bytes.AddRange(littleEndian);
            return this;
        }

        private Pickle Le32(uint v)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, v);
            _bytes.AddRange(b);
            return this;
        }
    }
}
