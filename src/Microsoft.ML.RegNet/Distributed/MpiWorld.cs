using System.Runtime.InteropServices;
using System.Text;

namespace Microsoft.ML.RegNet.Distributed;

/// <summary>
/// MPI_COMM_WORLD of this process: initialised once (MPI cannot be initialised again after MPI_Finalize, which runs at
/// process exit), with MPI_ERRORS_RETURN so every failure comes back as a <see cref="MpiException"/> carrying
/// MPI_Error_string. Works under <c>mpirun -np N</c>, with <c>-np 1</c> and without mpirun (singleton: rank 0 of 1).
/// Calls are serialised by a lock (MPI_THREAD_SERIALIZED).
/// </summary>
internal sealed unsafe class MpiWorld
{
    private static readonly object Gate = new();
    private static MpiWorld? _instance;
    private readonly MpiLibrary _lib;
    private readonly object _call = new();

    private MpiWorld(MpiLibrary lib, int rank, int size, int threadLevel)
    {
        _lib = lib;
        Rank = rank;
        Size = size;
        ThreadLevel = threadLevel;
    }

    /// <summary>This process's rank in MPI_COMM_WORLD.</summary>
    public int Rank { get; }
    /// <summary>The number of processes in MPI_COMM_WORLD.</summary>
    public int Size { get; }
    /// <summary>The thread level MPI_Init_thread provided.</summary>
    public int ThreadLevel { get; }
    /// <summary>True on rank 0 (the rank that logs and writes).</summary>
    public bool IsRoot => Rank == 0;
    /// <summary>The library and its flavour, for logs.</summary>
    public string Description => $"{_lib.Name} ({_lib.Flavor}), rank {Rank} of {Size}";

    /// <summary>The process's world, initialising MPI on first use. Throws <see cref="MpiUnavailableException"/> when no MPI
    /// library is installed.</summary>
    public static MpiWorld Get()
    {
        lock (Gate)
        {
            if (_instance is not null) return _instance;
            var lib = MpiLibrary.TryLoad(out string? problem) ?? throw new MpiUnavailableException($"Data-parallel training needs MPI: {problem}");
            int already = 0;
            Check(lib, lib.Initialized(&already), "MPI_Initialized");
            int provided = 0;
            if (already == 0)
            {
                // Open MPI's own SIGSEGV/SIGBUS handlers would take over the signals .NET turns into NullReferenceException.
                if (lib.Flavor == MpiFlavor.OpenMpi && Environment.GetEnvironmentVariable("OMPI_MCA_opal_signal") is null)
                    _ = setenv("OMPI_MCA_opal_signal", "", 0);
                Check(lib, lib.Init(null, null, MpiLibrary.ThreadSerialized, &provided), "MPI_Init_thread");
                AppDomain.CurrentDomain.ProcessExit += (_, _) => _instance?.Shutdown();
            }
            Check(lib, lib.SetErrhandler(lib.CommWorld, lib.ErrorsReturn), "MPI_Comm_set_errhandler");
            int rank = 0, size = 0;
            Check(lib, lib.CommRank(lib.CommWorld, &rank), "MPI_Comm_rank");
            Check(lib, lib.CommSize(lib.CommWorld, &size), "MPI_Comm_size");
            return _instance = new MpiWorld(lib, rank, size, provided);
        }
    }

    /// <summary>Sums <paramref name="data"/> element-wise over all ranks, in place.</summary>
    public void AllreduceSum(Span<float> data) => AllreduceSum(MemoryMarshal.AsBytes(data), sizeof(float), _lib.Float);

    /// <inheritdoc cref="AllreduceSum(Span{float})"/>
    public void AllreduceSum(Span<double> data) => AllreduceSum(MemoryMarshal.AsBytes(data), sizeof(double), _lib.Double);

    /// <inheritdoc cref="AllreduceSum(Span{float})"/>
    public void AllreduceSum(Span<long> data) => AllreduceSum(MemoryMarshal.AsBytes(data), sizeof(long), _lib.Int64);

    /// <summary>Sums <paramref name="count"/> elements of <paramref name="type"/> at <paramref name="address"/> over all ranks, in
    /// place (tensor storage). One MPI call moves at most 2^31−1 elements; larger buffers go in chunks.</summary>
    public void AllreduceSum(nint address, long count, MpiElement type)
    {
        var (size, handle) = type switch
        {
            MpiElement.Float32 => (4, _lib.Float),
            MpiElement.Float64 => (8, _lib.Double),
            MpiElement.Int64 => (8, _lib.Int64),
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        lock (_call)
        {
            for (long done = 0; done < count;)
            {
                int n = (int)Math.Min(int.MaxValue, count - done);
                Check(_lib, _lib.Allreduce((void*)_lib.InPlace, (byte*)address + done * size, n, handle, _lib.Sum, _lib.CommWorld), "MPI_Allreduce");
                done += n;
            }
        }
    }

    private void AllreduceSum(Span<byte> bytes, int elementSize, nint type)
    {
        fixed (byte* p = bytes)
        {
            lock (_call)
            {
                long count = bytes.Length / elementSize;
                for (long done = 0; done < count;)
                {
                    int n = (int)Math.Min(int.MaxValue, count - done);
                    Check(_lib, _lib.Allreduce((void*)_lib.InPlace, p + done * elementSize, n, type, _lib.Sum, _lib.CommWorld), "MPI_Allreduce");
                    done += n;
                }
            }
        }
    }

    /// <summary>Raw test entry: MPI_Allreduce with an arbitrary element count (a negative count must fail with an exception).</summary>
    internal void AllreduceSumUnchecked(Span<float> data, int count)
    {
        fixed (float* p = data)
            lock (_call)
                Check(_lib, _lib.Allreduce((void*)_lib.InPlace, p, count, _lib.Float, _lib.Sum, _lib.CommWorld), "MPI_Allreduce");
    }

    /// <summary>Copies <paramref name="data"/> from <paramref name="root"/> to every rank.</summary>
    public void Broadcast(Span<byte> data, int root = 0)
    {
        fixed (byte* p = data) Broadcast((nint)p, data.Length, root);
    }

    /// <summary>Copies <paramref name="bytes"/> bytes at <paramref name="address"/> from <paramref name="root"/> to every rank.</summary>
    public void Broadcast(nint address, long bytes, int root = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (_call)
        {
            for (long done = 0; done < bytes;)
            {
                int n = (int)Math.Min(int.MaxValue, bytes - done);
                Check(_lib, _lib.Bcast((byte*)address + done, n, _lib.Byte, root, _lib.CommWorld), "MPI_Bcast");
                done += n;
            }
        }
    }

    /// <summary>Rank 0's byte array on every rank (length first, then the bytes).</summary>
    public byte[] Broadcast(byte[]? rootData)
    {
        long length = IsRoot ? rootData!.LongLength : 0;
        Broadcast(MemoryMarshal.AsBytes(new Span<long>(ref length)));
        var data = IsRoot ? rootData! : new byte[length];
        Broadcast(data.AsSpan());
        return data;
    }

    /// <summary>Waits until every rank has called it.</summary>
    public void Barrier()
    {
        lock (_call) Check(_lib, _lib.Barrier(_lib.CommWorld), "MPI_Barrier");
    }

    /// <summary>Ends every process of the job (MPI_Abort); does not return.</summary>
    public void Abort(int code)
    {
        _lib.Abort(_lib.CommWorld, code);
        Environment.Exit(code);
    }

    private bool _finalized;

    /// <summary>MPI_Finalize, once (at process exit).</summary>
    public void Shutdown()
    {
        lock (_call)
        {
            if (_finalized) return;
            _finalized = true;
            int done = 0;
            if (_lib.Finalized(&done) == MpiLibrary.Success && done == 0) _lib.FinalizeMpi();
        }
    }

    private static void Check(MpiLibrary lib, int code, string call)
    {
        if (code != MpiLibrary.Success) throw new MpiException(call, code, ErrorString(lib, code));
    }

    private static string ErrorString(MpiLibrary lib, int code)
    {
        var buffer = new byte[1024];
        int length = 0;
        fixed (byte* p = buffer)
            if (lib.ErrorString(code, p, &length) != MpiLibrary.Success) return $"MPI error {code}";
        return Encoding.UTF8.GetString(buffer, 0, Math.Clamp(length, 0, buffer.Length));
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int setenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}

/// <summary>Element types the allreduce takes.</summary>
internal enum MpiElement
{
    /// <summary>MPI_FLOAT.</summary>
    Float32,
    /// <summary>MPI_DOUBLE.</summary>
    Float64,
    /// <summary>MPI_INT64_T.</summary>
    Int64,
}

/// <summary>An MPI call returned an error code; the message is MPI_Error_string's.</summary>
internal sealed class MpiException(string call, int code, string text) : Exception($"{call} failed with MPI error {code}: {text}")
{
    /// <summary>The MPI return code.</summary>
    public int Code { get; } = code;
}

/// <summary>No MPI library is installed, and data-parallel training was asked for.</summary>
internal sealed class MpiUnavailableException(string message) : InvalidOperationException(message);
