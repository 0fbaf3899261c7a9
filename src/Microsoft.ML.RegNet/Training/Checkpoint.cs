using System.Text.Json;
using Microsoft.ML.RegNet.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Training;

/// <summary>Where training stands: enough to continue exactly (data order is a function of seed and epoch).</summary>
public sealed record TrainingState(int Epoch, int BatchInEpoch, long GlobalStep, double BestMetric, int EpochsWithoutImprovement, string Architecture, int NumClasses);

/// <summary>
/// A checkpoint file: "RNCK", format version, the <see cref="TrainingState"/> as JSON, the model (TorchSharp format),
/// then the optimizer state. Written atomically (temporary file, then rename).
/// </summary>
internal static class Checkpoint
{
    private const int FormatVersion = 1;
    private static readonly byte[] Magic = "RNCK"u8.ToArray();
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static void Save(string path, TrainingState state, RegNetModel model, TorchSharp.Modules.OptimizerHelper optimizer) =>
        AtomicFile.Write(path, stream =>
        {
            using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            writer.Write(Magic);
            writer.Write(FormatVersion);
            writer.Write(JsonSerializer.Serialize(state, Json));
            model.save(writer);
            optimizer.save_state_dict(writer);
        });

    public static TrainingState Load(string path, RegNetModel model, TorchSharp.Modules.OptimizerHelper? optimizer)
    {
        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream);
        if (!reader.ReadBytes(4).AsSpan().SequenceEqual(Magic))
            throw new InvalidDataException($"{path} is not a RegNetML checkpoint (written by RegNetTrainer with a workspace).");
        int version = reader.ReadInt32();
        if (version != FormatVersion)
            throw new InvalidDataException($"{path} has checkpoint format {version}; this version of RegNetML reads format {FormatVersion}.");
        var state = JsonSerializer.Deserialize<TrainingState>(reader.ReadString(), Json)
            ?? throw new InvalidDataException($"{path}: the training state is empty.");
        if (state.Architecture != model.Spec.ToString() || state.NumClasses != model.NumClasses)
            throw new InvalidDataException(
                $"{path} was written for {state.Architecture} with {state.NumClasses} classes, but this run trains {model.Spec} with {model.NumClasses} classes.");
        model.load(reader);
        optimizer?.load_state_dict(reader);
        return state;
    }
}
