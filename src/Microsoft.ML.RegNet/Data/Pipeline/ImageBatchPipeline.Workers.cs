using System.Runtime.InteropServices;
using System.Threading.Channels;
using Microsoft.ML.RegNet.Data.Transforms;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Data.Pipeline;

// The worker and consumer side: decoding and augmenting a batch into its buffer, and turning it into tensors.
internal sealed partial class ImageBatchPipeline
{
    private sealed class Job(int index, RowSample[] samples, float[] buffer)
    {
        public readonly int Index = index;
        public readonly RowSample?[] Samples = samples; // cleared once processed, releasing the pixels early
        public readonly long[] Rows = samples.Select(s => s.Row).ToArray();
        public readonly long[] Labels = samples.Select(s => s switch
        {
            RowSample.Encoded e => e.Label,
            RowSample.Decoded d => d.Label,
            _ => -1,
        }).ToArray();
        public readonly float[] Buffer = buffer;

        /// <summary>Per slot: null when the slot's pixels are in <see cref="Buffer"/>, otherwise why the row was left out.</summary>
        public readonly BadRow?[] Bad = new BadRow?[samples.Length];

        public readonly TaskCompletionSource Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
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
            var sample = job.Samples[i]!;
            if (sample is RowSample.Encoded or RowSample.Decoded) Interlocked.Increment(ref _imagesRead);
            var bad = Augment(sample, epoch, job.Buffer.AsSpan(i * len, len), scratch, ref decodeBuffer);
            if (bad is { } b && Options.BadImagePolicy == BadImagePolicy.FailOnBadImage)
                throw new InvalidDataException($"Bad image at {b} (BadImagePolicy.Skip leaves such rows out.)");
            job.Bad[i] = bad;
            job.Samples[i] = null;
        }
    }

    // Writes the sample's normalised pixels into destination; returns why it cannot, for a bad row.
    private BadRow? Augment(RowSample sample, int epoch, Span<float> destination, RgbImage scratch, ref byte[]? decodeBuffer)
    {
        RgbImage? image;
        switch (sample)
        {
            case RowSample.Bad bad:
                return bad.Problem;
            case RowSample.Decoded decoded:
                image = decoded.Image;
                break;
            case RowSample.Encoded encoded:
                image = ImageDecoder.TryDecode(encoded.Bytes, ref decodeBuffer, out string? problem);
                if (image is null) return new BadRow(sample.Row, problem!);
                break;
            default:
                throw new InvalidOperationException($"Row {sample.Row} reached a worker without being read ({sample}).");
        }
        try
        {
            _augmenter.Process(image, AugmentationRandom.ForSample(Options.Seed, epoch, sample.Row), destination, scratch);
            return null;
        }
        catch (ArgumentException e)
        {
            return new BadRow(sample.Row, e.Message);
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
            if (job.Bad[i] is { } b)
            {
                bad.Add(b);
                continue;
            }
            if (n != i) Array.Copy(job.Buffer, (long)i * len, job.Buffer, (long)n * len, len);
            rows.Add(job.Rows[i]);
            labels.Add(job.Labels[i]);
            n++;
        }
        RecordBadRows(bad);
        if (n == 0)
        {
            ReturnBuffer(job.Buffer);
            return null;
        }
        int s = Options.ImageSize;
        var images = empty(new long[] { n, 3, s, s }, ScalarType.Float32);
        // Tensor.bytes is a view of a CPU tensor's storage: one memcpy (TensorAccessor.CopyFrom is element-wise, ~15× slower).
        new ReadOnlySpan<float>(job.Buffer, 0, n * len).CopyTo(MemoryMarshal.Cast<byte, float>(images.bytes));
        ReturnBuffer(job.Buffer);
        images.DetachFromDisposeScope();
        Tensor? labelTensor = null;
        if (Options.LabelColumnName is not null)
        {
            labelTensor = tensor(labels.ToArray(), ScalarType.Int64);
            labelTensor.DetachFromDisposeScope();
        }
        return new ImageBatch(job.Index, images, labelTensor, rows.ToArray(), bad);
    }

    private void RecordBadRows(List<BadRow> bad)
    {
        if (bad.Count == 0) return;
        Interlocked.Add(ref _badImages, bad.Count);
        lock (_firstBadRows) _firstBadRows.AddRange(bad.Take(BadRowsKept - _firstBadRows.Count));
    }
}
