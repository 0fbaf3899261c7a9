using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Distributed;

/// <summary>
/// Horovod's data parallelism for one Fit, over <see cref="MpiWorld"/>: every rank holds the whole model, rank 0's
/// parameters, buffers and optimizer state are broadcast at the start, each rank trains its own rows, and after every
/// backward the gradients (packed into one flat float32 buffer) are summed over the ranks and divided by their number,
/// so every rank takes the same optimizer step. BatchNorm statistics stay per rank between synchronisations and are
/// broadcast from rank 0 before evaluation and checkpoints. Tensors must be on the CPU and contiguous.
/// </summary>
internal sealed class DataParallel : IDisposable
{
    private readonly MpiWorld _world;
    private readonly Stopwatch _communication = new();
    private readonly Stopwatch _waiting = new();
    private Tensor? _flat;

    public DataParallel(MpiWorld world) => _world = world;

    /// <summary>This process's rank.</summary>
    public int Rank => _world.Rank;
    /// <summary>The number of ranks.</summary>
    public int Size => _world.Size;
    /// <summary>True on rank 0.</summary>
    public bool IsRoot => _world.IsRoot;
    /// <summary>The MPI world, for logs and abort.</summary>
    public MpiWorld World => _world;

    /// <summary>Time spent in gradient allreduces so far, once every rank was ready (the transfer and the summing).</summary>
    public TimeSpan GradientCommunication => _communication.Elapsed;
    /// <summary>Time spent before the gradient allreduces waiting for the slowest rank to finish its backward pass (load
    /// imbalance between ranks, not communication).</summary>
    public TimeSpan GradientWaiting => _waiting.Elapsed;
    /// <summary>Gradient allreduces so far.</summary>
    public long GradientReductions { get; private set; }
    /// <summary>Times the gradients were copied into the flat buffer (once, unless something replaces them).</summary>
    public long GradientPacks { get; private set; }

    /// <summary>Decides from <paramref name="mode"/> and the launcher's environment whether this Fit is data-parallel; null when not.</summary>
    public static DataParallel? Start(DataParallelMode mode) => mode switch
    {
        DataParallelMode.Off => null,
        DataParallelMode.Auto when DataParallelEnvironment.LaunchedWorldSize <= 1 => null,
        DataParallelMode.Auto or DataParallelMode.Mpi => new DataParallel(MpiWorld.Get()),
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, null),
    };

    /// <summary>Copies rank 0's values of <paramref name="tensors"/> (parameters, buffers) into every rank's, in place.</summary>
    public void Broadcast(IEnumerable<Tensor> tensors)
    {
        using var _ = no_grad();
        foreach (var tensor in tensors)
        {
            Require(tensor);
            BroadcastBytes(tensor);
        }
    }

    /// <summary>The model's parameters and buffers (state dict order) from rank 0.</summary>
    public void BroadcastState(nn.Module model) => Broadcast(model.state_dict().Values);

    /// <summary>The model's buffers only (BatchNorm running statistics) from rank 0.</summary>
    public void BroadcastBuffers(nn.Module model) => Broadcast(model.buffers());

    /// <summary>Rank 0's optimizer state (momentum, Adam moments, step counts) on every rank, through its serialised form.</summary>
    public void BroadcastOptimizerState(OptimizerHelper optimizer)
    {
        byte[]? mine = null;
        if (IsRoot)
        {
            using var memory = new MemoryStream();
            using (var writer = new BinaryWriter(memory, System.Text.Encoding.UTF8, leaveOpen: true)) optimizer.save_state_dict(writer);
            mine = memory.ToArray();
        }
        var bytes = _world.Broadcast(mine);
        if (IsRoot) return;
        using var reader = new BinaryReader(new MemoryStream(bytes));
        optimizer.load_state_dict(reader);
    }

    /// <summary>Rank 0's string on every rank.</summary>
    public string Broadcast(string? rootValue) =>
        System.Text.Encoding.UTF8.GetString(_world.Broadcast(IsRoot ? System.Text.Encoding.UTF8.GetBytes(rootValue ?? "") : null));

    /// <summary>Replaces every parameter's gradient by its mean over the ranks: one in-place allreduce of a flat buffer
    /// the gradients are views of, divided by the rank count. The first call packs the gradients into the buffer (a
    /// missing one as zeros) and makes each gradient its slice; afterwards backward accumulates into the slices and the
    /// optimizer's zero_grad zeroes them in place, so nothing is copied. A gradient that was replaced (a zero_grad that
    /// drops gradients) is packed again.</summary>
    public void AverageGradients(IReadOnlyList<Parameter> parameters)
    {
        using var scope = NewDisposeScope();
        var flat = FlatBuffer(parameters);
        using (no_grad())
        {
            if (!GradientsAreViewsOf(flat, parameters))
            {
                PackInto(flat, parameters);
                GradientPacks++;
            }
            // A barrier first, so that the allreduce's time is the communication alone and the wait for a slower rank is
            // counted apart; on shared memory or a network it costs one message latency per step.
            _waiting.Start();
            _world.Barrier();
            _waiting.Stop();
            _communication.Start();
            _world.AllreduceSum(MpiAddress(flat), flat.numel(), MpiElement.Float32);
            _communication.Stop();
            GradientReductions++;
            flat.div_(Size);
        }
    }

    private Tensor FlatBuffer(IReadOnlyList<Parameter> parameters)
    {
        long total = 0;
        foreach (var p in parameters)
        {
            if (p.dtype != ScalarType.Float32 || p.device_type != DeviceType.CPU)
                throw new NotSupportedException($"Data-parallel training averages float32 CPU gradients; a parameter is {p.dtype} on {p.device_type}.");
            total += p.numel();
        }
        if (_flat is null || _flat.numel() != total)
        {
            _flat?.Dispose();
            _flat = zeros(total, ScalarType.Float32).DetachFromDisposeScope();
        }
        return _flat;
    }

    private static void PackInto(Tensor flat, IReadOnlyList<Parameter> parameters)
    {
        long offset = 0;
        foreach (var p in parameters)
        {
            long n = p.numel();
            var slice = flat.narrow(0, offset, n);
            if (p.grad is { } g) slice.copy_(g.reshape(-1));
            else slice.zero_();
            p.grad = slice.view(p.shape);
            offset += n;
        }
    }

    private static bool GradientsAreViewsOf(Tensor flat, IReadOnlyList<Parameter> parameters)
    {
        nint next = MpiAddress(flat);
        foreach (var p in parameters)
        {
            if (p.grad is not { } g || !g.is_contiguous() || MpiAddress(g) != next) return false;
            next += (nint)(p.numel() * sizeof(float));
        }
        return true;
    }

    /// <summary>Sums <paramref name="values"/> over the ranks, in place.</summary>
    public void Sum(double[] values) => _world.AllreduceSum(values.AsSpan());

    /// <summary>Ends the whole job after printing <paramref name="error"/> (every rank's output reaches mpirun's).</summary>
    public void Abort(Exception error)
    {
        Console.Out.Flush();
        Console.Error.WriteLine($"RegNetML data-parallel training failed on rank {Rank} of {Size}; aborting every rank (MPI_Abort). " +
                                $"{error.GetType().Name}: {error.Message}");
        Console.Error.Flush();
        _world.Abort(1);
    }

    public void Dispose()
    {
        _flat?.Dispose();
        _flat = null;
    }

    private void BroadcastBytes(Tensor tensor) => _world.Broadcast(MpiAddress(tensor), tensor.numel() * tensor.element_size());

    private static unsafe nint MpiAddress(Tensor tensor)
    {
        Require(tensor);
        var bytes = tensor.bytes;
        fixed (byte* p = bytes) return (nint)p; // libtorch's own storage: not moved by the GC.
    }

    private static void Require(Tensor tensor)
    {
        if (tensor.device_type != DeviceType.CPU || !tensor.is_contiguous())
            throw new NotSupportedException("Data-parallel training moves contiguous CPU tensors; a tensor is " +
                                            (tensor.device_type != DeviceType.CPU ? $"on {tensor.device_type}." : "not contiguous."));
    }
}
