using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Data.Pipeline;

/// <summary>
/// The trainer's input pipeline: streams an <see cref="IDataView"/> (image or encoded-bytes column plus a key label
/// column) into ready <c>N×3×S×S</c> float32 batches and int64 labels, decoding and augmenting on worker threads while
/// the consumer trains on the previous batch.
/// </summary>
/// <remarks>
/// <para>Stages: a reader thread walks one cursor (<c>RowSource</c>, so data sets larger than memory stream),
/// optionally through a <c>ShuffleBuffer</c>, groups rows into batches (<c>Batcher</c>) and queues them (at
/// most <see cref="ImageBatchPipelineOptions.PrefetchBatches"/> ahead); <see cref="ImageBatchPipelineOptions.WorkerThreads"/>
/// workers decode and augment whole batches into pooled float buffers; the consumer (the thread enumerating
/// <see cref="Read"/>) takes batches in order and copies them into tensors. Each row travels as a <c>RowSample</c>,
/// and a row that cannot be used as a <see cref="BadRow"/> with its reason. Tensors are created on the consumer thread
/// and detached from any dispose scope; workers never touch TorchSharp.</para>
/// <para>Determinism: a sample's randomness is <see cref="AugmentationRandom.ForSample"/>(seed, epoch, row index) and the
/// shuffle order is drawn from (seed, epoch), so batches are identical whatever the thread count or timing.</para>
/// <para>Decoding of an <c>MLImage</c> column happens inside ML.NET's getter on the reader thread; use
/// <c>LoadRawImageBytes</c> to decode in parallel.</para>
/// </remarks>
/// <example>
/// <code>
/// var pipeline = new ImageBatchPipeline(new ImageBatchPipelineOptions { BatchSize = 32, Seed = 1, Shuffle = true });
/// foreach (var batch in pipeline.Read(data, epoch, skipBatches: 0, token))
///     using (batch) { /* batch.Images, batch.Labels */ }
/// </code>
/// </example>
internal sealed partial class ImageBatchPipeline
{
    private readonly ImageAugmenter _augmenter;
    private readonly ConcurrentBag<float[]> _buffers = new();
    private readonly List<BadRow> _firstBadRows = new();
    private long _badImages;
    private long _imagesRead;

    /// <summary>Creates the pipeline; invalid options throw here.</summary>
    public ImageBatchPipeline(ImageBatchPipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _augmenter = new ImageAugmenter(options.Augmentation, options.ImageSize, options.Normalization);
    }

    /// <summary>The settings.</summary>
    public ImageBatchPipelineOptions Options { get; }

    /// <summary>Rows skipped as bad (under <see cref="BadImagePolicy.Skip"/>) over every <see cref="Read"/> so far.</summary>
    public long BadImagesSkipped => Interlocked.Read(ref _badImages);

    /// <summary>The first <see cref="BadRowsKept"/> rows skipped as bad, with their reasons, for logs.</summary>
    public IReadOnlyList<BadRow> FirstBadRows
    {
        get { lock (_firstBadRows) return _firstBadRows.ToArray(); }
    }

    /// <summary>How many skipped rows <see cref="FirstBadRows"/> keeps.</summary>
    public const int BadRowsKept = 10;

    /// <summary>"row 3: reason; row 9: reason …" for the skipped rows kept, naming how many there were in all.</summary>
    public string DescribeBadRows()
    {
        var first = FirstBadRows;
        long all = BadImagesSkipped;
        return string.Join("; ", first) + (all > first.Count ? $"; … ({all} in all)" : "");
    }

    /// <summary>Rows whose image column was read (files read, images decoded) over every <see cref="Read"/> so far.</summary>
    internal long ImagesRead => Interlocked.Read(ref _imagesRead);

    /// <summary>Batch buffers kept for reuse.</summary>
    internal int PooledBuffers => _buffers.Count;

    /// <summary>Floats per image.</summary>
    internal int ImageLength => _augmenter.OutputLength;

    /// <summary>
    /// Streams one epoch. Enumerate it once; breaking out of the loop (or disposing the enumerator) stops the workers.
    /// </summary>
    /// <param name="data">The rows.</param>
    /// <param name="epoch">Epoch number (0-based): part of every random seed.</param>
    /// <param name="skipBatches">Batches to skip at the start (resume). Their rows are not read or decoded, shuffled or not
    /// (with shuffling, the rows are counted first to work out which ones the skipped batches hold); later batches equal
    /// an uninterrupted run's.</param>
    /// <param name="cancellationToken">Stops the epoch.</param>
    /// <param name="augmentationEpoch">The epoch whose per-sample randomness augments the images (null: <paramref name="epoch"/>);
    /// the order stays <paramref name="epoch"/>'s. The trainer's cached augmented views replay one epoch's augmentation in another's order.</param>
    public IEnumerable<ImageBatch> Read(IDataView data, int epoch, int skipBatches = 0, CancellationToken cancellationToken = default, int? augmentationEpoch = null)
    {
        var columns = Validate(data, epoch, skipBatches, augmentationEpoch);
        return ReadCore(data, columns, epoch, skipBatches, augmentationEpoch ?? epoch, cancellationToken);
    }

    /// <summary>
    /// <see cref="Read"/>, with the reader and workers started now instead of at the first <c>MoveNext</c>: a caller with
    /// other work before its first batch (building a model, loading weights) gets the first batches decoded meanwhile.
    /// Enumerate it once, or dispose it unread; either stops the workers. <paramref name="readAhead"/> batches may be
    /// prepared before they are asked for (null: <see cref="ImageBatchPipelineOptions.PrefetchBatches"/>).
    /// </summary>
    public StartedEpoch Start(IDataView data, int epoch, int skipBatches = 0, CancellationToken cancellationToken = default, int? augmentationEpoch = null,
        int? readAhead = null)
    {
        if (readAhead < 1) throw new ArgumentOutOfRangeException(nameof(readAhead), readAhead, "readAhead must be positive.");
        var columns = Validate(data, epoch, skipBatches, augmentationEpoch);
        return new StartedEpoch(this, data, columns, epoch, skipBatches, augmentationEpoch ?? epoch, cancellationToken, readAhead ?? Options.PrefetchBatches);
    }

    private ImageColumns Validate(IDataView data, int epoch, int skipBatches, int? augmentationEpoch)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "The epoch must be ≥ 0.");
        if (augmentationEpoch < 0) throw new ArgumentOutOfRangeException(nameof(augmentationEpoch), augmentationEpoch, "The augmentation epoch must be ≥ 0.");
        if (skipBatches < 0) throw new ArgumentOutOfRangeException(nameof(skipBatches), skipBatches, "skipBatches must be ≥ 0.");
        TorchRuntime.Configure(); // before the consumer creates the first batch tensor
        return ImageColumns.Resolve(data.Schema, Options.ImageColumnName, Options.LabelColumnName);
    }

    private IEnumerable<ImageBatch> ReadCore(IDataView data, ImageColumns columns, int epoch, int skipBatches, int augmentationEpoch, CancellationToken cancellationToken)
    {
        using var stages = new StartedEpoch(this, data, columns, epoch, skipBatches, augmentationEpoch, cancellationToken, Options.PrefetchBatches);
        foreach (var batch in stages) yield return batch;
    }

    /// <summary>One epoch's reader and workers, running; enumerating takes its batches in order.</summary>
    public sealed class StartedEpoch : IEnumerable<ImageBatch>, IDisposable
    {
        private readonly ImageBatchPipeline _pipeline;
        private readonly CancellationTokenSource _cts;
        private readonly Channel<Job> _ordered;
        private readonly Task[] _tasks;
        private bool _enumerated, _disposed;

        internal StartedEpoch(ImageBatchPipeline pipeline, IDataView data, ImageColumns columns, int epoch, int skipBatches, int augmentationEpoch,
            CancellationToken cancellationToken, int readAhead)
        {
            _pipeline = pipeline;
            _cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var token = _cts.Token;
            var ordered = _ordered = Channel.CreateBounded<Job>(new BoundedChannelOptions(readAhead)
            {
                SingleReader = true,
                SingleWriter = true,
                FullMode = BoundedChannelFullMode.Wait,
            });
            var work = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleWriter = true });
            var tasks = new List<Task>
            {
                Task.Factory.StartNew(() => pipeline.RunReader(data, columns, epoch, skipBatches, ordered.Writer, work.Writer, token),
                    token, TaskCreationOptions.LongRunning, TaskScheduler.Default),
            };
            for (int w = 0; w < pipeline.Options.WorkerThreads; w++)
                tasks.Add(Task.Factory.StartNew(() => pipeline.RunWorker(work.Reader, augmentationEpoch, token), token, TaskCreationOptions.LongRunning, TaskScheduler.Default));
            _tasks = tasks.ToArray();
        }

        /// <summary>The epoch's batches, in order; once.</summary>
        public IEnumerator<ImageBatch> GetEnumerator()
        {
            if (_enumerated) throw new InvalidOperationException("An epoch's batches can be enumerated once.");
            _enumerated = true;
            return Batches().GetEnumerator();
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        private IEnumerable<ImageBatch> Batches()
        {
            try
            {
                while (NextJob(_ordered.Reader, _cts.Token) is { } job)
                {
                    try
                    {
                        job.Done.Task.Wait(_cts.Token);
                    }
                    catch (AggregateException e) when (e.InnerExceptions.Count == 1)
                    {
                        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException!).Throw();
                    }
                    var batch = _pipeline.BuildBatch(job);
                    if (batch is not null) yield return batch;
                }
            }
            finally
            {
                Dispose();
            }
        }

        /// <summary>Stops the reader and workers and waits for them.</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _cts.Cancel();
            try
            {
                Task.WaitAll(_tasks);
            }
            catch (AggregateException)
            {
                // Cancelled or failed stages: the consumer already saw the error that matters.
            }
            _cts.Dispose();
        }
    }

    private static Job? NextJob(ChannelReader<Job> reader, CancellationToken token)
    {
        try
        {
            if (!reader.WaitToReadAsync(token).AsTask().GetAwaiter().GetResult()) return null;
        }
        catch (ChannelClosedException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
        }
        return reader.TryRead(out var job) ? job : null;
    }

    private float[] RentBuffer() => _buffers.TryTake(out var b) ? b : new float[Options.BatchSize * ImageLength];

    // An epoch started with a long read-ahead borrows many buffers at once; only as many as the usual depth uses are kept.
    private void ReturnBuffer(float[] buffer)
    {
        if (_buffers.Count < Options.PrefetchBatches + Options.WorkerThreads + 1) _buffers.Add(buffer);
    }

    // Rows → (shuffle) → batches → queued for the workers and, in order, for the consumer. Errors end both queues.
    private void RunReader(IDataView data, ImageColumns columns, int epoch, int skipBatches,
        ChannelWriter<Job> ordered, ChannelWriter<Job> work, CancellationToken token)
    {
        try
        {
            // Data-parallel: this rank's rows only; the others are neither read nor decoded.
            var shard = Options.Shard is { } s ? s.Rows(RowSource.CountRows(data), Options.Seed, epoch, Options.Shuffle).ToHashSet() : null;
            var unread = UnreadRows(data, epoch, (long)skipBatches * Options.BatchSize, shard);
            using var source = new RowSource(data, columns);
            var rows = source.Rows(shard is null ? unread : row => !shard.Contains(row) || unread(row), token);
            if (shard is not null) rows = rows.Where(r => shard.Contains(r.Row));
            if (Options.Shuffle) rows = ShuffleBuffer.Shuffle(rows, Options.ShufflePoolSize, ShuffleRandom(epoch));
            foreach (var (index, samples) in Batcher.Batches(rows, Options.BatchSize, skipBatches, Options.DropLast))
            {
                var job = new Job(index, samples, RentBuffer());
                ordered.WriteAsync(job, token).AsTask().GetAwaiter().GetResult();
                work.TryWrite(job);
            }
            ordered.TryComplete();
            work.TryComplete();
        }
        catch (Exception e)
        {
            ordered.TryComplete(e);
            work.TryComplete();
        }
    }

    private AugmentationRandom ShuffleRandom(int epoch) => AugmentationRandom.ForEpoch(Options.Seed, epoch, purpose: 1);

    // Which rows fall in the first skipRows places of the epoch's order. The shuffle order depends only on the row count
    // and (seed, epoch), so it is replayed on row numbers alone and the skipped rows are never read.
    private Func<long, bool> UnreadRows(IDataView data, int epoch, long skipRows, HashSet<long>? shard = null)
    {
        if (skipRows == 0) return _ => false;
        if (!Options.Shuffle && shard is null) return row => row < skipRows;
        var skipped = new HashSet<long>();
        var rows = shard is null ? RowNumbers(RowSource.CountRows(data)) : shard.Order();
        foreach (long row in Order(rows, epoch))
        {
            if (skipped.Count == skipRows) break;
            skipped.Add(row);
        }
        return skipped.Contains;
    }

    /// <summary>The order in which an epoch delivers the rows of a data view of <paramref name="count"/> rows (one process,
    /// no bad rows): replayed on row numbers alone, without reading anything.</summary>
    internal IEnumerable<long> RowOrder(long count, int epoch) => Order(RowNumbers(count), epoch);

    private IEnumerable<long> Order(IEnumerable<long> rows, int epoch) =>
        Options.Shuffle ? ShuffleBuffer.Shuffle(rows, Options.ShufflePoolSize, ShuffleRandom(epoch)) : rows;

    private static IEnumerable<long> RowNumbers(long count)
    {
        for (long i = 0; i < count; i++) yield return i;
    }
}
