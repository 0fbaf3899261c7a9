using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.Transforms.Image;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Data.Pipeline;

/// <summary>
/// The trainer's input pipeline: streams an <see cref="IDataView"/> (image or encoded-bytes column plus a key label
/// column) into ready <c>N×3×S×S</c> float32 batches and int64 labels, decoding and augmenting on worker threads while
/// the consumer trains on the previous batch.
/// </summary>
/// <remarks>
/// <para>Stages: a reader thread walks one cursor (so data sets larger than memory stream), optionally through a
/// shuffle buffer, groups rows into batches and queues them (at most <see cref="ImageBatchPipelineOptions.PrefetchBatches"/>
/// ahead); <see cref="ImageBatchPipelineOptions.WorkerThreads"/> workers decode and augment whole batches into pooled float
/// buffers; the consumer (the thread enumerating <see cref="Read"/>) takes batches in order and copies them into tensors.
/// Tensors are created on the consumer thread and detached from any dispose scope; workers never touch TorchSharp.</para>
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
public sealed class ImageBatchPipeline
{
    private readonly ImageAugmenter _augmenter;
    private readonly ConcurrentBag<float[]> _buffers = new();
    private long _badImages;

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

    private readonly List<BadRow> _firstBadRows = new();

    /// <summary>"row 3: reason; row 9: reason …" for the skipped rows kept, naming how many there were in all.</summary>
    public string DescribeBadRows()
    {
        var first = FirstBadRows;
        long all = BadImagesSkipped;
        return string.Join("; ", first.Select(b => b.Reason)) + (all > first.Count ? $"; … ({all} in all)" : "");
    }

    /// <summary>Floats per image.</summary>
    private int ImageLength => _augmenter.OutputLength;

    /// <summary>
    /// Streams one epoch. Enumerate it once; breaking out of the loop (or disposing the enumerator) stops the workers.
    /// </summary>
    /// <param name="data">The rows.</param>
    /// <param name="epoch">Epoch number (0-based): part of every random seed.</param>
    /// <param name="skipBatches">Batches to skip at the start (resume). Skipped rows are not decoded; under
    /// <see cref="BadImagePolicy.Skip"/> they are counted as rows, so later batches equal an uninterrupted run's.</param>
    /// <param name="cancellationToken">Stops the epoch.</param>
    public IEnumerable<ImageBatch> Read(IDataView data, int epoch, int skipBatches = 0, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "The epoch must be ≥ 0.");
        if (skipBatches < 0) throw new ArgumentOutOfRangeException(nameof(skipBatches), skipBatches, "skipBatches must be ≥ 0.");
        var columns = ResolveColumns(data.Schema);
        return ReadCore(data, columns, epoch, skipBatches, cancellationToken);
    }

    private readonly record struct Columns(DataViewSchema.Column Image, bool IsBytes, DataViewSchema.Column? Label);

    private Columns ResolveColumns(DataViewSchema schema)
    {
        string Known() => string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}'"));
        var image = schema.GetColumnOrNull(Options.ImageColumn)
            ?? throw new ArgumentException($"The data has no image column '{Options.ImageColumn}' (columns: {Known()}).");
        bool isBytes = image.Type switch
        {
            ImageDataViewType => false,
            VectorDataViewType v when v.ItemType == NumberDataViewType.Byte => true,
            var t => throw new ArgumentException(
                $"Column '{Options.ImageColumn}' has type {t}; expected an image (LoadImages) or a byte vector (LoadRawImageBytes)."),
        };
        DataViewSchema.Column? label = null;
        if (Options.LabelColumn is { } labelName)
        {
            var found = schema.GetColumnOrNull(labelName)
                ?? throw new ArgumentException($"The data has no label column '{labelName}' (columns: {Known()}).");
            if (found.Type is not KeyDataViewType { RawType: var raw } || raw != typeof(uint))
                throw new ArgumentException(
                    $"Label column '{labelName}' has type {found.Type}; expected a UInt32 key (use MapValueToKey).");
            label = found;
        }
        return new Columns(image, isBytes, label);
    }

    private sealed class Sample
    {
        public long Row;
        public byte[]? Encoded;
        public RgbImage? Decoded;
        public long Label;
        public string? Error;
    }

    private sealed class Job(int index, Sample[] samples, float[] buffer)
    {
        public readonly int Index = index;
        public readonly Sample[] Samples = samples;
        public readonly float[] Buffer = buffer;
        public readonly bool[] Ok = new bool[samples.Length];
        public readonly string?[] Errors = new string?[samples.Length];
        public readonly TaskCompletionSource Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private IEnumerable<ImageBatch> ReadCore(IDataView data, Columns columns, int epoch, int skipBatches, CancellationToken cancellationToken)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = cts.Token;
        var ordered = Channel.CreateBounded<Job>(new BoundedChannelOptions(Options.PrefetchBatches)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        var work = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleWriter = true });
        var tasks = new List<Task>
        {
            Task.Factory.StartNew(() => RunReader(data, columns, epoch, skipBatches, ordered.Writer, work.Writer, token),
                token, TaskCreationOptions.LongRunning, TaskScheduler.Default),
        };
        for (int w = 0; w < Options.WorkerThreads; w++)
            tasks.Add(Task.Factory.StartNew(() => RunWorker(work.Reader, epoch, token), token, TaskCreationOptions.LongRunning, TaskScheduler.Default));
        try
        {
            while (true)
            {
                var job = NextJob(ordered.Reader, token);
                if (job is null) break;
                try
                {
                    job.Done.Task.Wait(token);
                }
                catch (AggregateException e) when (e.InnerExceptions.Count == 1)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException!).Throw();
                }
                var batch = BuildBatch(job);
                if (batch is not null) yield return batch;
            }
        }
        finally
        {
            cts.Cancel();
            try
            {
                Task.WaitAll(tasks.ToArray());
            }
            catch (AggregateException)
            {
                // Cancelled or failed stages: the consumer already saw the error that matters.
            }
            cts.Dispose();
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

    private void RunReader(IDataView data, Columns columns, int epoch, int skipBatches,
        ChannelWriter<Job> ordered, ChannelWriter<Job> work, CancellationToken token)
    {
        try
        {
            var active = columns.Label is { } l ? new[] { columns.Image, l } : new[] { columns.Image };
            using var cursor = SerialCursor(data, active);
            ValueGetter<VBuffer<byte>>? bytesGetter = columns.IsBytes ? cursor.GetGetter<VBuffer<byte>>(columns.Image) : null;
            ValueGetter<MLImage>? imageGetter = columns.IsBytes ? null : cursor.GetGetter<MLImage>(columns.Image);
            ValueGetter<uint>? labelGetter = columns.Label is { } lc ? cursor.GetGetter<uint>(lc) : null;
            int batchSize = Options.BatchSize;
            long skipRows = (long)skipBatches * batchSize, emitted = 0;
            int batchIndex = skipBatches;
            var current = new List<Sample>(batchSize);
            var pool = Options.Shuffle ? new List<Sample>(Math.Min(Options.ShufflePoolSize, 1 << 16)) : null;
            var shuffle = Options.Shuffle ? AugmentationRandom.ForEpoch(Options.Seed, epoch, purpose: 1) : null;
            VBuffer<byte> bytes = default;
            MLImage image = null!;

            void Dispatch()
            {
                var job = new Job(batchIndex++, current.ToArray(), RentBuffer());
                current.Clear();
                ordered.WriteAsync(job, token).AsTask().GetAwaiter().GetResult();
                work.TryWrite(job);
            }

            void Emit(Sample s)
            {
                if (emitted++ < skipRows) return;
                current.Add(s);
                if (current.Count == batchSize) Dispatch();
            }

            Sample ReadRow()
            {
                var s = new Sample { Row = cursor.Position };
                try
                {
                    if (labelGetter is not null)
                    {
                        uint key = 0;
                        labelGetter(ref key);
                        if (key == 0) s.Error = $"row {s.Row}: missing label (key 0).";
                        s.Label = (long)key - 1;
                    }
                    if (bytesGetter is not null)
                    {
                        bytesGetter(ref bytes);
                        s.Encoded = bytes.IsDense ? bytes.GetValues().ToArray() : [.. bytes.DenseValues()];
                    }
                    else
                    {
                        // The same variable is handed back on every call, as ML.NET's own consumers do: the getter owns
                        // the image it returned (a cached data view may return it again), so it is copied, not disposed.
                        imageGetter!(ref image);
                        if (image is null) s.Error ??= $"row {s.Row}: no image.";
                        else s.Decoded = ImageDecoder.FromMLImage(image, $"row {s.Row}");
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    s.Error ??= e.Message.StartsWith("row ", StringComparison.Ordinal) ? e.Message : $"row {s.Row}: {e.Message}";
                }
                return s;
            }

            while (cursor.MoveNext())
            {
                token.ThrowIfCancellationRequested();
                if (pool is null)
                {
                    if (emitted < skipRows) { emitted++; continue; } // resume: skip without reading or decoding
                    Emit(ReadRow());
                }
                else if (pool.Count < Options.ShufflePoolSize)
                {
                    pool.Add(ReadRow());
                }
                else
                {
                    // Shuffle buffer (as tf.data): emit a random pooled row, put the new one in its place.
                    int j = shuffle!.NextInt(pool.Count);
                    var next = ReadRow();
                    Emit(pool[j]);
                    pool[j] = next;
                }
            }
            if (pool is not null)
            {
                shuffle!.Shuffle(CollectionsMarshal.AsSpan(pool));
                foreach (var s in pool) Emit(s);
            }
            if (current.Count > 0 && !Options.DropLast) Dispatch();
            ordered.TryComplete();
            work.TryComplete();
        }
        catch (Exception e)
        {
            ordered.TryComplete(e);
            work.TryComplete();
        }
    }

    // A one-cursor set, never ML.NET's consolidated parallel cursor: that one runs the getters (LoadRawImageBytes reads
    // the file in its getter) on its own threads inside MoveNext, so one unreadable file would end the whole epoch with
    // "Splitter/consolidator worker encountered exception" instead of failing or skipping that row here.
    private static DataViewRowCursor SerialCursor(IDataView data, DataViewSchema.Column[] active)
    {
        var cursors = data.GetRowCursorSet(active, 1);
        if (cursors.Length == 1) return cursors[0];
        foreach (var c in cursors) c.Dispose();
        throw new InvalidOperationException($"{data.GetType().Name} returned {cursors.Length} cursors when asked for one.");
    }

    private void RunWorker(ChannelReader<Job> work, int epoch, CancellationToken token)
    {
        var scratch = new RgbImage(Options.ImageSize, Options.ImageSize);
        byte[]? decodeBuffer = null;
        try
        {
            while (work.WaitToReadAsync(token).AsTask().GetAwaiter().GetResult())
            {
                while (work.TryRead(out var job))
                {
                    try
                    {
                        Process(job, epoch, scratch, ref decodeBuffer);
                        job.Done.TrySetResult();
                    }
                    catch (Exception e)
                    {
                        job.Done.TrySetException(e);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Process(Job job, int epoch, RgbImage scratch, ref byte[]? decodeBuffer)
    {
        int len = ImageLength;
        for (int i = 0; i < job.Samples.Length; i++)
        {
            var s = job.Samples[i];
            string? error = s.Error;
            if (error is null)
            {
                try
                {
                    var image = s.Decoded ?? ImageDecoder.Decode(s.Encoded ?? [], $"row {s.Row}", ref decodeBuffer);
                    var random = AugmentationRandom.ForSample(Options.Seed, epoch, s.Row);
                    _augmenter.Process(image, random, job.Buffer.AsSpan(i * len, len), scratch);
                    job.Ok[i] = true;
                }
                catch (Exception e) when (e is InvalidDataException or ArgumentException)
                {
                    error = e.Message.StartsWith("row ", StringComparison.Ordinal) ? e.Message : $"row {s.Row}: {e.Message}";
                }
            }
            if (error is not null)
            {
                if (Options.BadImagePolicy == BadImagePolicy.FailOnBadImage)
                    throw new InvalidDataException($"Bad image at {error} (BadImagePolicy.Skip leaves such rows out.)");
                job.Errors[i] = error;
            }
            s.Encoded = null; // release early
            s.Decoded = null;
        }
    }

    private ImageBatch? BuildBatch(Job job)
    {
        int len = ImageLength, n = 0;
        var rows = new List<long>(job.Samples.Length);
        var labels = new List<long>(job.Samples.Length);
        var bad = new List<BadRow>();
        for (int i = 0; i < job.Samples.Length; i++)
        {
            if (!job.Ok[i])
            {
                bad.Add(new BadRow(job.Samples[i].Row, job.Errors[i] ?? "unknown error"));
                continue;
            }
            if (n != i) Array.Copy(job.Buffer, (long)i * len, job.Buffer, (long)n * len, len);
            rows.Add(job.Samples[i].Row);
            labels.Add(job.Samples[i].Label);
            n++;
        }
        if (bad.Count > 0)
        {
            Interlocked.Add(ref _badImages, bad.Count);
            lock (_firstBadRows) _firstBadRows.AddRange(bad.Take(BadRowsKept - _firstBadRows.Count));
        }
        if (n == 0)
        {
            _buffers.Add(job.Buffer);
            return null;
        }
        int s = Options.ImageSize;
        var images = empty(new long[] { n, 3, s, s }, ScalarType.Float32);
        // Tensor.bytes is a view of a CPU tensor's storage: one memcpy (TensorAccessor.CopyFrom is element-wise, ~15× slower).
        new ReadOnlySpan<float>(job.Buffer, 0, n * len).CopyTo(MemoryMarshal.Cast<byte, float>(images.bytes));
        _buffers.Add(job.Buffer);
        images.DetachFromDisposeScope();
        Tensor? labelTensor = null;
        if (Options.LabelColumn is not null)
        {
            labelTensor = tensor(labels.ToArray(), ScalarType.Int64);
            labelTensor.DetachFromDisposeScope();
        }
        return new ImageBatch(job.Index, images, labelTensor, rows.ToArray(), bad);
    }
}
