using System.Runtime.InteropServices;

namespace Microsoft.ML.RegNet.Distributed;

/// <summary>
/// The MPI C library, loaded at run time: the dozen functions data parallelism needs and the handles they take. Open MPI's
/// handles are the addresses of its <c>ompi_mpi_*</c> globals; MPICH's are integers from its <c>mpi.h</c>. Which table
/// applies is decided at load by the exports the library has. No MPI.NET (it targets MS-MPI's handles and crashes on Open MPI).
/// </summary>
internal sealed unsafe class MpiLibrary
{
    /// <summary>MPI_SUCCESS.</summary>
    public const int Success = 0;
    /// <summary>MPI_THREAD_SERIALIZED: any thread may call, one at a time.</summary>
    public const int ThreadSerialized = 2;

    // Library names tried in order: Open MPI (Debian/Ubuntu/RHEL), then MPICH and its derivatives.
    private static readonly string[] Candidates = ["libmpi.so.40", "libmpi.so", "libmpich.so.12", "libmpi.so.12", "libmpich.so"];

    private MpiLibrary(nint handle, string name, MpiFlavor flavor)
    {
        Handle = handle;
        Name = name;
        Flavor = flavor;
        Init = (delegate* unmanaged<int*, byte***, int, int*, int>)Export("MPI_Init_thread");
        Initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized");
        FinalizeMpi = (delegate* unmanaged<int>)Export("MPI_Finalize");
        CommRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        Allreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, int>)Export("MPI_Allreduce");
        Bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export("MPI_Bcast");
        Barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier");
        Abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        SetErrhandler = (delegate* unmanaged<nint, nint, int>)Export("MPI_Comm_set_errhandler");
        ErrorString = (delegate* unmanaged<int, byte*, int*, int>)Export("MPI_Error_string");
        if (flavor == MpiFlavor.OpenMpi)
        {
            CommWorld = Export("ompi_mpi_comm_world");
            Float = Export("ompi_mpi_float");
            Double = Export("ompi_mpi_double");
            Int64 = Export("ompi_mpi_int64_t");
            Byte = Export("ompi_mpi_byte");
            Sum = Export("ompi_mpi_op_sum");
            ErrorsReturn = Export("ompi_mpi_errors_return");
            InPlace = 1;
        }
        else
        {
            // MPICH's mpi.h (stable since MPICH 3; shared by Intel MPI and MVAPICH).
            CommWorld = 0x44000000;
            Float = 0x4c00040a;
            Double = 0x4c00080b;
            Int64 = 0x4c00083a;
            Byte = 0x4c00010d;
            Sum = 0x58000003;
            ErrorsReturn = 0x54000001;
            InPlace = -1;
        }
    }

    /// <summary>The native library handle.</summary>
    public nint Handle { get; }
    /// <summary>The file name it was loaded by.</summary>
    public string Name { get; }
    /// <summary>Which handle table applies.</summary>
    public MpiFlavor Flavor { get; }

    public readonly delegate* unmanaged<int*, byte***, int, int*, int> Init;
    public readonly delegate* unmanaged<int*, int> Initialized;
    public readonly delegate* unmanaged<int*, int> Finalized;
    public readonly delegate* unmanaged<int> FinalizeMpi;
    public readonly delegate* unmanaged<nint, int*, int> CommRank;
    public readonly delegate* unmanaged<nint, int*, int> CommSize;
    public readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, int> Allreduce;
    public readonly delegate* unmanaged<void*, int, nint, int, nint, int> Bcast;
    public readonly delegate* unmanaged<nint, int> Barrier;
    public readonly delegate* unmanaged<nint, int, int> Abort;
    public readonly delegate* unmanaged<nint, nint, int> SetErrhandler;
    public readonly delegate* unmanaged<int, byte*, int*, int> ErrorString;

    public nint CommWorld { get; }
    public nint Float { get; }
    public nint Double { get; }
    public nint Int64 { get; }
    public nint Byte { get; }
    public nint Sum { get; }
    public nint ErrorsReturn { get; }
    /// <summary>MPI_IN_PLACE: (void*)1 in Open MPI, (void*)-1 in MPICH.</summary>
    public nint InPlace { get; }

    /// <summary>Loads the first MPI library found; null with the reasons when there is none.</summary>
    public static MpiLibrary? TryLoad(out string? problem)
    {
        var tried = new List<string>();
        string? overridden = Environment.GetEnvironmentVariable("REGNET_MPI_LIBRARY");
        foreach (var name in overridden is { Length: > 0 } ? [overridden] : Candidates)
        {
            if (!NativeLibrary.TryLoad(name, out var handle))
            {
                tried.Add(name);
                continue;
            }
            if (!NativeLibrary.TryGetExport(handle, "MPI_Init_thread", out _))
            {
                tried.Add($"{name} (no MPI_Init_thread)");
                continue;
            }
            var flavor = NativeLibrary.TryGetExport(handle, "ompi_mpi_comm_world", out _) ? MpiFlavor.OpenMpi : MpiFlavor.Mpich;
            problem = null;
            return new MpiLibrary(handle, name, flavor);
        }
        problem = $"no MPI library could be loaded (tried {string.Join(", ", tried)}). Install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin) " +
                  "or MPICH, or set REGNET_MPI_LIBRARY to the path of libmpi.";
        return null;
    }

    private nint Export(string name) => NativeLibrary.TryGetExport(Handle, name, out var address)
        ? address
        : throw new EntryPointNotFoundException($"{Name} has no export {name}; it is not an MPI library RegNetML can use (Open MPI 4+ or MPICH 3+).");
}

/// <summary>Which MPI implementation's ABI (handle representation) a library has.</summary>
internal enum MpiFlavor
{
    /// <summary>Handles are addresses of <c>ompi_mpi_*</c> globals.</summary>
    OpenMpi,
    /// <summary>Handles are 32-bit integers (MPICH, Intel MPI, MVAPICH).</summary>
    Mpich,
}
