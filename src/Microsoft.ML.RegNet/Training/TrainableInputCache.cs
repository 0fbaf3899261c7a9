using System.Runtime.InteropServices;
using Microsoft.ML.RegNet.Data.Pipeline;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Training;

/// <summary>
/// The input of the part of the network that trains, kept for each training row of one Fit and each of its views: the
/// frozen trunk's output (stem and frozen stages), in host memory up to a budget (for all views together) and then in a
/// temporary file; or, without a frozen trunk to cache, the preprocessed images themselves (<see cref="HoldsImages"/>), in
/// memory only. A view is one fixed preprocessing of every
/// row: the deterministic one without augmentation (one view), or the augmentation of one epoch (view v is epoch v's), so
/// (view, row index) is the key. An epoch that runs over the images fills its view (<see cref="TrainingSession.TrunkComputed"/>);
/// once one epoch has filled a view completely, later epochs of that view read their batches from it in the order the input
/// pipeline would have produced, so they read no image and, with a frozen trunk, train only the unfrozen part.
/// </summary>
internal sealed class TrainableInputCache : IDisposable
{
    private readonly Dictionary<(int View, long Row), (float[] Values, long Label)> _memory = new();
    private readonly Dictionary<(int View, long Row), (long Offset, long Label)> _disk = new();
    private readonly HashSet<int> _complete = new();
    private readonly long _budgetBytes;
    private readonly string _spillPath;
    private FileStream? _spill;
    private long[]? _shape;

    /// <param name="memoryBudgetBytes">Bytes of trunk outputs kept in memory; the rest go to <paramref name="spillDirectory"/>.</param>
    /// <param name="spillDirectory">Folder of the temporary file (deleted on <see cref="Dispose"/>).</param>
    public TrainableInputCache(long memoryBudgetBytes, string spillDirectory)
    {
        _budgetBytes = memoryBudgetBytes;
        _spillPath = Path.Combine(spillDirectory, $"regnetml-trunk-{Guid.NewGuid():N}.bin");
    }

    private TrainableInputCache(long memoryBudgetBytes) : this(memoryBudgetBytes, Path.GetTempPath()) => HoldsImages = true;

    /// <summary>A cache of preprocessed images (the network's input), kept in memory up to <paramref name="memoryBudgetBytes"/>:
    /// images beyond it are not kept (<see cref="Overflowed"/>), since reading them back from disk would save little over
    /// decoding them.</summary>
    public static TrainableInputCache ForImages(long memoryBudgetBytes) => new(memoryBudgetBytes);

    /// <summary>True when it holds images rather than trunk outputs: its batches go through the whole network.</summary>
    public bool HoldsImages { get; }

    /// <summary>An image cache that met its budget: it does not hold every row and must not be used.</summary>
    public bool Overflowed { get; private set; }

    /// <summary>True once an epoch over all rows has gone through <see cref="Add"/> for <paramref name="view"/>.</summary>
    public bool IsComplete(int view) => _complete.Contains(view);

    /// <summary>Views complete.</summary>
    public int CompleteViews => _complete.Count;

    /// <summary>Trunk outputs held, over all views.</summary>
    public int Count => _memory.Count + _disk.Count;

    /// <summary>Bytes held in memory.</summary>
    public long BytesInMemory { get; private set; }

    /// <summary>Bytes written to the temporary file.</summary>
    public long BytesOnDisk => _spill?.Length ?? 0;

    /// <summary>Keeps the trunk output of each image of <paramref name="batch"/> as <paramref name="view"/> (rows already held are left as they are).</summary>
    public void Add(int view, ImageBatch batch, Tensor trunk)
    {
        if (Overflowed) return;
        using var scope = NewDisposeScope();
        var host = trunk.detach().cpu().contiguous();
        _shape ??= host.shape[1..];
        int per = checked((int)(host.numel() / batch.Count));
        var values = MemoryMarshal.Cast<byte, float>(host.bytes);
        var labels = batch.Labels!.cpu().data<long>().ToArray();
        for (int i = 0; i < batch.Count; i++)
        {
            var row = (view, batch.RowIndices[i]);
            if (Contains(row)) continue;
            var slice = values.Slice(i * per, per);
            if (BytesInMemory + per * sizeof(float) <= _budgetBytes)
            {
                _memory[row] = (slice.ToArray(), labels[i]);
                BytesInMemory += per * sizeof(float);
                continue;
            }
            if (HoldsImages)
            {
                // It will not be used, so its memory is not held for the rest of the epoch.
                Overflowed = true;
                _memory.Clear();
                BytesInMemory = 0;
                return;
            }
            _spill ??= new FileStream(_spillPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
            long offset = _spill.Length;
            _spill.Seek(offset, SeekOrigin.Begin);
            _spill.Write(MemoryMarshal.AsBytes(slice));
            _disk[row] = (offset, labels[i]);
        }
    }

    /// <summary>Marks <paramref name="view"/> as holding every row (after a whole epoch went through <see cref="Add"/>).</summary>
    public void MarkComplete(int view)
    {
        if (Overflowed) throw new InvalidOperationException("An image cache over its budget does not hold every row.");
        _complete.Add(view);
    }

    /// <summary>Batches of the cached trunk outputs of <paramref name="view"/> for the rows in <paramref name="order"/> (rows
    /// not held are left out, as bad rows are by the input pipeline), <paramref name="batchSize"/> at a time, skipping the
    /// first <paramref name="skipBatches"/>.</summary>
    public IEnumerable<ImageBatch> Batches(int view, IEnumerable<long> order, int batchSize, int skipBatches)
    {
        _spill?.Flush();
        int index = 0;
        var rows = new List<(int View, long Row)>(batchSize);
        foreach (long row in order)
        {
            if (!Contains((view, row))) continue;
            rows.Add((view, row));
            if (rows.Count < batchSize) continue;
            if (index >= skipBatches) yield return Build(index, rows);
            index++;
            rows.Clear();
        }
        if (rows.Count > 0 && index >= skipBatches) yield return Build(index, rows);
    }

    private bool Contains((int View, long Row) key) => _memory.ContainsKey(key) || _disk.ContainsKey(key);

    // Host memory, like the input pipeline's batches: the training session moves them to the model's device. The rows are
    // copied straight into the batch tensor's memory (no managed array in between: a batch of images is megabytes).
    private ImageBatch Build(int index, List<(int View, long Row)> rows)
    {
        int per = checked((int)_shape!.Aggregate(1L, (a, b) => a * b));
        var images = empty(new long[] { rows.Count }.Concat(_shape!).ToArray(), ScalarType.Float32).DetachFromDisposeScope();
        var labels = new long[rows.Count];
        try
        {
            var values = MemoryMarshal.Cast<byte, float>(images.bytes);
            for (int i = 0; i < rows.Count; i++)
            {
                var target = values.Slice(i * per, per);
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
        }
        catch
        {
            images.Dispose();
            throw;
        }
        var labelTensor = tensor(labels, ScalarType.Int64).DetachFromDisposeScope();
        return new ImageBatch(index, images, labelTensor, rows.Select(r => r.Row).ToArray(), Array.Empty<BadRow>()) { HoldsTrunkOutput = !HoldsImages };
    }

    /// <summary>Frees the memory and deletes the temporary file.</summary>
    public void Dispose()
    {
        _memory.Clear();
        _disk.Clear();
        _complete.Clear();
        _spill?.Dispose();
        _spill = null;
    }
}
