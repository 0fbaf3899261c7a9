using Microsoft.ML.RegNet;

namespace RegNetML.Tool.Training;

/// <summary><c>--weights</c>: a file, or the published ImageNet weights of the architecture by ecosystem name.</summary>
internal static class StartingWeights
{
    /// <summary>The file to start from and the normalisation the weights were trained with (null: keep the recipe's).</summary>
    public static (string Path, ImageNormalization? Normalization, string? Note) Resolve(string weights, RegNetSpec spec, CancellationToken cancellation)
    {
        PretrainedSource? source = weights.ToLowerInvariant() switch
        {
            "keras" => PretrainedSource.Keras,
            "timm" => PretrainedSource.Timm,
            "torchvision" => PretrainedSource.TorchVisionV2,
            _ => null,
        };
        if (source is null)
        {
            if (!File.Exists(weights))
                throw new UserError($"--weights {weights}: no such file. Give a weight file (.h5, .pth, .safetensors, model.zip, a checkpoint) or keras, timm or torchvision.");
            return (Path.GetFullPath(weights), null, null);
        }
        if (!RegNetZoo.TryFind(spec.Name, out var zoo))
            throw new UserError($"--weights {weights} has published weights for the 24 zoo models only, not '{spec.Name}'. Pick a zoo --arch or pass a weight file.");
        var entry = PretrainedCatalog.Find(zoo.KerasName);
        if (source == PretrainedSource.TorchVisionV2 && entry.TorchVisionV2 is null)
        {
            if (entry.TorchVisionV1 is null)
                throw new UserError($"torchvision publishes no weights for {zoo.KerasName}; use --weights keras or timm.");
            source = PretrainedSource.TorchVisionV1;
        }
        // timm publishes no hashes: the user named it, and the note says the file was not verified.
        var options = new PretrainedOptions { AllowUnverified = source == PretrainedSource.Timm };
        string path = PretrainedWeights.GetFileAsync(zoo.KerasName, source.Value, options, cancellation).GetAwaiter().GetResult();
        string? note = source == PretrainedSource.Timm ? $"{Path.GetFileName(path)}: timm publishes no hash, so this file was not verified." : null;
        return (path, source == PretrainedSource.Keras ? ImageNormalization.UnitScale : ImageNormalization.ImageNet, note);
    }
}
