namespace Microsoft.ML.RegNet;

/// <summary>Whether <c>Fit</c> trains data-parallel over MPI processes (docs/data_parallel.md).</summary>
public enum DataParallelMode
{
    /// <summary>Data-parallel when the process was started by an MPI launcher (<c>mpirun</c>, <c>srun</c>) with more than one
    /// process (<see cref="DataParallelEnvironment.LaunchedWorldSize"/> &gt; 1); otherwise one process, as without MPI.</summary>
    Auto,
    /// <summary>Never: every process trains on its own, even under <c>mpirun</c>.</summary>
    Off,
    /// <summary>Always through MPI (one process without a launcher is rank 0 of 1); an error when no MPI library is installed.</summary>
    Mpi,
}

/// <summary>What the MPI launcher told this process, read from its environment without initialising MPI: use it to let
/// only rank 0 print, evaluate or save after <c>Fit</c>.</summary>
public static class DataParallelEnvironment
{
    /// <summary>The number of processes the launcher started (Open MPI: <c>OMPI_COMM_WORLD_SIZE</c>; MPICH, Intel MPI, Slurm's
    /// PMI: <c>PMI_SIZE</c>); 1 when not launched by one.</summary>
    public static int LaunchedWorldSize => Read("OMPI_COMM_WORLD_SIZE", "PMI_SIZE") ?? 1;

    /// <summary>This process's rank (<c>OMPI_COMM_WORLD_RANK</c>, <c>PMI_RANK</c>); 0 when not launched by an MPI launcher.</summary>
    public static int Rank => Read("OMPI_COMM_WORLD_RANK", "PMI_RANK") ?? 0;

    /// <summary>True on rank 0, the process that logs, writes the run folder and checkpoints.</summary>
    public static bool IsRoot => Rank == 0;

    /// <summary>Processes of the job on this machine (<c>OMPI_COMM_WORLD_LOCAL_SIZE</c>, <c>MPI_LOCALNRANKS</c>); 1 without a launcher.</summary>
    internal static int LocalWorldSize => Read("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS") ?? 1;

    private static int? Read(params string[] names)
    {
        foreach (var name in names)
            if (int.TryParse(Environment.GetEnvironmentVariable(name), System.Globalization.NumberStyles.Integer,
                    System.Globalization.CultureInfo.InvariantCulture, out int value) && value >= 0)
                return value;
        return null;
    }
}
