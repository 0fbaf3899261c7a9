using System.Runtime.InteropServices;
using Microsoft.ML.RegNet.Data.Pipeline;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Training;

/// <summary>
/// The frozen trunk's output (stem and frozen stages) for each training row of one Fit, in host memory up to a budget and
/// then in a temporary file. Within a Fit the rows and their preprocessing are fixed (deterministic, no mixing: the trainer
/// uses the cache only then), so the row index is the key. An epoch that runs over the images fills it
/// (<see cref="TrainingSession.TrunkComputed"/>); once one epoch has filled it completely, later epochs read their batches
/// from it in the order the input pipeline would have produced, so they train only the unfrozen part.
/// </summary>
internal sealed class FrozenTrunkCache : IDisposable
{
    private readonly Dictionary<long, (float[] Values, long Label)> _memory = new();
    private readonly Dictionary<long, (long Offset, long Label)> _disk = new();
    private readonly long _budgetBytes;
    private readonly string _spillPath;
    private FileStream? _spill;
    private long[]? _shape;

    /// <param name="memoryBudgetBytes">Bytes of trunk outputs kept in memory; the rest go to <paramref name="spillDirectory"/>.</param>
    /// <param name="spillDirectory">Folder of the temporary file (deleted on <see cref="Dispose"/>).</param>
    public FrozenTrunkCache(long memoryBudgetBytes, string spillDirectory)
    {
        _budgetBytes = memoryBudgetBytes;
        _spillPath = Path.Combine(spillDirectory, $"regnetml-trunk-{Guid.NewGuid():N}.bin");
    }

    /// <summary>True once an epoch over all rows has gone through <see cref="Add"/>.</summary>
    public bool IsComplete { get; private set; }

    /// <summary>Rows held.</summary>
    public int Count => _memory.Count + _disk.Count;

    /// <summary>Bytes held in memory.</summary>
    public long BytesInMemory { get; private set; }

    /// <summary>Bytes written to the temporary file.</summary>
    public long BytesOnDisk => _spill?.Length ?? 0;

    /// <summary>Keeps the trunk output of each image of <paramref name="batch"/> (rows already held are left as they are).</summary>
    public void Add(ImageBatch batch, Tensor trunk)
    {
        using var scope = NewDisposeScope();
        var host = trunk.detach().cpu().contiguous();
        _shape ??= host.shape[1..];
        int per = checked((int)(host.numel() / batch.Count));
        var values = MemoryMarshal.Cast<byte, float>(host.bytes);
        var labels = batch.Labels!.cpu().data<long>().ToArray();
        for (int i = 0; i < batch.Count; i++)
        {
            long row = batch.RowIndices[i];
            if (Contains(row)) continue;
            var slice = values.Slice(i * per, per);
            if (BytesInMemory + per * sizeof(float) <= _budgetBytes)
            {
                _memory[row] = (slice.ToArray(), labels[i]);
                BytesInMemory += per * sizeof(float);
                continue;
            }
            _spill ??= new FileStream(_spillPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
            long offset = _spill.Length;
            _spill.Seek(offset, SeekOrigin.Begin);
            _spill.Write(MemoryMarshal.AsBytes(slice));
            _disk[row] = (offset, labels[i]);
        }
    }

    /// <summary>Marks the cache as holding every row (after a whole epoch went through <see cref="Add"/>).</summary>
    public void MarkComplete() => IsComplete = true;

    /// <summary>Batches of cached trunk outputs for the rows in <paramref name="order"/> (rows not held are left out, as
    /// bad rows are by the input pipeline), <paramref name="batchSize"/> at a time, skipping the first <paramref name="skipBatches"/>.</summary>
    public IEnumerable<ImageBatch> Batches(IEnumerable<long> order, int batchSize, int skipBatches)
    {
        _spill?.Flush();
        int index = 0;
        var rows = new List<long>(batchSize);
        foreach (long row in order)
        {
            if (!Contains(row)) continue;
            rows.Add(row);
            if (rows.Count < batchSize) continue;
            if (index >= skipBatches) yield return Build(index, rows);
            index++;
            rows.Clear();
        }
        if (rows.Count > 0 && index >= skipBatches) yield return Build(index, rows);
    }

    private bool Contains(long row) => _memory.ContainsKey(row) || _disk.ContainsKey(row);

    // Host memory, like the input pipeline's batches: the training session moves them to the model's device.
    private ImageBatch Build(int index, List<long> rows)
    {
        int per = checked((int)_shape!.Aggregate(1L, (a, b) => a * b));
        var values = new float[rows.Count * per];
        var labels = new long[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            var target = values.AsSpan(i * per, per);
            if (_memory.TryGetValue(rows[i], out var held))
            {
                held.Values.CopyTo(target);
                labels[i] = held.Label;
                continue;
            }
            var (offset, label) = _disk[rows[i]];
            RandomAccess.Read(_spill!.SafeFileHandle, MemoryMarshal.AsBytes(target), offset);
            labels[i] = label;
        }
        var images = tensor(values, new long[] { rows.Count }.Concat(_shape!).ToArray());
        var labelTensor = tensor(labels, ScalarType.Int64);
        images.DetachFromDisposeScope();
        labelTensor.DetachFromDisposeScope();
        return new ImageBatch(index, images, labelTensor, rows.ToArray(), Array.Empty<BadRow>()) { HoldsTrunkOutput = true };
    }

    /// <summary>Frees the memory and deletes the temporary file.</summary>
    public void Dispose()
    {
        _memory.Clear();
        _disk.Clear();
        _spill?.Dispose();
        _spill = null;
    }
}
