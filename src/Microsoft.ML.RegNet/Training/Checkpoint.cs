using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.RegNet.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Training;

/// <summary>Where training stands: enough to continue exactly (data order is a function of seed and epoch).</summary>
internal sealed record TrainingState(int Epoch, int BatchInEpoch, long GlobalStep, double BestMetric, int EpochsWithoutImprovement, string Architecture, int NumClasses);

/// <summary>What a checkpoint says besides its tensors.</summary>
/// <param name="State">Where training stands.</param>
/// <param name="MetricsRecords">Records in the run's metrics.jsonl when the checkpoint was written; a resume drops later ones
/// so that replayed steps are logged once.</param>
/// <param name="Padding">The model's padding style (Keras-trained weights use TensorFlow 'same').</param>
/// <param name="Config">The run's configuration (config.json) the checkpoint was trained with.</param>
internal sealed record CheckpointHeader(TrainingState State, long MetricsRecords, string Padding, JsonObject? Config);

/// <summary>
/// A checkpoint file: "RNCK", format version, the <see cref="CheckpointHeader"/> as JSON, the model (TorchSharp format),
/// the optimizer state, then the SHA-256 of everything before it. Written atomically (temporary file, then rename);
/// verified completely before any tensor is copied into a model.
/// </summary>
internal static class Checkpoint
{
    private const int FormatVersion = 2;
    private const int HashSize = 32;
    internal static ReadOnlySpan<byte> Magic => "RNCK"u8;
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>True when <paramref name="path"/> starts like a checkpoint (it may still be damaged).</summary>
    public static bool LooksLikeCheckpoint(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> head = stackalloc byte[4];
        return stream.ReadAtLeast(head, 4, throwOnEndOfStream: false) == 4 && head.SequenceEqual(Magic);
    }

    /// <summary>Writes a checkpoint to <paramref name="path"/> through a temporary file; with <paramref name="previous"/>,
    /// the checkpoint it replaces becomes that file (a hard link where the file system has them, so a complete latest
    /// checkpoint exists at every instant).</summary>
    public static void Save(string path, CheckpointHeader header, RegNetModel model, TorchSharp.Modules.OptimizerHelper optimizer, string? previous = null)
    {
        AtomicFile.Write(path, stream =>
        {
            using var hashing = new HashingStream(stream);
            using (var writer = new BinaryWriter(hashing, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(Magic);
                writer.Write(FormatVersion);
                writer.Write(JsonSerializer.Serialize(header, Json));
                FaultPoints.Hit("checkpoint:header-written");
                model.save(writer);
                FaultPoints.Hit("checkpoint:model-written");
                optimizer.save_state_dict(writer);
                writer.Flush();
            }
            stream.Write(hashing.Finish());
            FaultPoints.Hit("checkpoint:complete-before-rename");
        }, previous);
        FaultPoints.Hit("checkpoint:renamed");
    }

    /// <summary>Reads the header after verifying the whole file.</summary>
    public static CheckpointHeader ReadHeader(string path) => Read(path, null, null, null);

    /// <summary>Verifies the whole file, lets <paramref name="validate"/> refuse it from its header, then loads the model
    /// (and the optimizer when given). Nothing is copied into the model unless the checksum matches.</summary>
    public static CheckpointHeader Load(string path, RegNetModel model, TorchSharp.Modules.OptimizerHelper? optimizer, Action<CheckpointHeader>? validate = null) =>
        Read(path, model, optimizer, validate);

    private static CheckpointHeader Read(string path, RegNetModel? model, TorchSharp.Modules.OptimizerHelper? optimizer, Action<CheckpointHeader>? validate)
    {
        using var stream = File.OpenRead(path);
        long length = stream.Length;
        CheckFormat(stream, path);
        VerifyChecksum(stream, path);

        stream.Position = 8;
        try
        {
            using var reader = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            var header = JsonSerializer.Deserialize<CheckpointHeader>(reader.ReadString(), Json)
                ?? throw Damaged(path, "its header is empty");
            if (header.State is null) throw Damaged(path, "its header has no training state");
            validate?.Invoke(header);
            if (model is null) return header;
            if (!model.Spec.MatchesStored(header.State.Architecture) || header.State.NumClasses != model.NumberOfClasses)
                throw new InvalidDataException(
                    $"{path} was written for {header.State.Architecture} with {header.State.NumClasses} classes, but this run trains {model.Spec} with {model.NumberOfClasses} classes.");
            model.load(reader);
            if (Enum.TryParse<PaddingStyle>(header.Padding, out var padding)) model.Padding = padding;
            optimizer?.load_state_dict(reader);
            if (optimizer is not null && stream.Position != length - HashSize)
                throw Damaged(path, $"{length - HashSize - stream.Position} bytes follow the optimizer state");
            return header;
        }
        catch (Exception e) when (e is EndOfStreamException or JsonException or FormatException or NotSupportedException)
        {
            throw Damaged(path, $"it could not be parsed ({e.GetType().Name}: {e.Message})", e);
        }
    }

    // The magic and the format version (the first 8 bytes), and room for a checksum after them.
    private static void CheckFormat(Stream stream, string path)
    {
        var start = new byte[8];
        int got = stream.ReadAtLeast(start, 8, throwOnEndOfStream: false);
        if (got < 4 || !start.AsSpan(0, 4).SequenceEqual(Magic))
            throw new InvalidDataException($"{path} is not a RegNetML checkpoint (those start with 'RNCK' and are written by RegNetTrainer with a WorkspacePath).");
        if (got < 8) throw Damaged(path, "it is truncated");
        int version = BitConverter.ToInt32(start, 4);
        if (version == 1)
            throw new InvalidDataException($"{path} has checkpoint format 1, written by an earlier RegNetML without a checksum, so it cannot be verified. " +
                "Start a new run (StartingWeightsPath cannot read it either).");
        if (version != FormatVersion)
            throw new InvalidDataException($"{path} has checkpoint format {version}; this version of RegNetML reads format {FormatVersion}. " +
                "Use the RegNetML version that wrote it, or start a new run.");
        if (stream.Length < 8 + HashSize) throw Damaged(path, "it is truncated");
    }

    // The SHA-256 of everything before the last 32 bytes must equal those bytes.
    private static void VerifyChecksum(Stream stream, string path)
    {
        long length = stream.Length;
        stream.Position = 0;
        byte[] actual;
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            var buffer = new byte[1 << 20];
            long left = length - HashSize;
            while (left > 0)
            {
                int n = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                if (n == 0) throw Damaged(path, "it is truncated");
                hash.AppendData(buffer, 0, n);
                left -= n;
            }
            actual = hash.GetHashAndReset();
        }
        var stored = new byte[HashSize];
        stream.ReadExactly(stored);
        if (!CryptographicOperations.FixedTimeEquals(actual, stored))
            throw Damaged(path, "its SHA-256 checksum does not match its content (a changed, truncated or partly written byte)");
    }

    private static InvalidDataException Damaged(string path, string what, Exception? inner = null)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        string name = Path.GetFileName(path);
        string previous = Path.Combine(folder, RunDirectory.PreviousCheckpointName);
        string advice = name == RunDirectory.LatestCheckpointName && File.Exists(previous)
            ? $"Resume from {previous} instead: set ResumeFromPreviousCheckpoint = true (the run folder is kept and continued)."
            : "Resume from another checkpoint of the run (checkpoints/previous.ckpt or best.ckpt) or start a new run.";
        return new InvalidDataException($"Checkpoint {path} is damaged: {what}. No weight was loaded from it. {advice}", inner);
    }

    /// <summary>True when every floating-point parameter and buffer of the model is finite.</summary>
    public static bool IsFinite(RegNetModel model)
    {
        var tensors = model.state_dict();
        using var scope = NewDisposeScope();
        foreach (var tensor in tensors.Values)
            if (tensor.is_floating_point() && !isfinite(tensor).all().item<bool>()) return false;
        return true;
    }

    /// <summary>Passes writes through and hashes them; the hash goes at the end of the file.</summary>
    private sealed class HashingStream(Stream inner) : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        public byte[] Finish() => _hash.GetHashAndReset();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _hash.AppendData(buffer);
            inner.Write(buffer);
        }
        protected override void Dispose(bool disposing)
        {
            if (disposing) _hash.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>Named points in checkpoint writing and training where the fault-injection tests stop the process.</summary>
internal static class FaultPoints
{
    /// <summary>Set only by the fault-injection host; null (nothing happens) otherwise.</summary>
    internal static Action<string>? Hook;

    internal static void Hit(string point) => Hook?.Invoke(point);
}
