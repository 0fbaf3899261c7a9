using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet;
using Microsoft.ML.Transforms;
using RegNetML.Tool.Data;
using RegNetML.Tool.Plotting;
using RegNetML.Tool.Scoring;
using RegNetML.Tool.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RegNetML.Tool.Commands;

/// <summary><c>regnet train</c>: images in, a run folder with checkpoints, metrics and model.zip out.</summary>
internal sealed class TrainCommand(IAnsiConsole console) : Command<TrainSettings>
{
    /// <summary>Exit code of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).</summary>
    public const int InterruptedExitCode = 130;

    public override int Execute(CommandContext context, TrainSettings given, CancellationToken cancellation)
    {
        var settings = given.Resume is null ? given : RunRecord.ForResume(given);
        if (settings.Data is null)
            throw new UserError("Give the training images: regnet train <folder|csv> (or --resume <run folder>).");
        if (settings.Val is not null && settings.ValFraction is not null)
            throw new UserError("Give --val or --val-fraction, not both.");
        var spec = Architecture.Resolve(settings.Arch, settings.Spec);
        var train = ImageDataset.Load(settings.Data).RequireTrainable();
        var validation = ValidationData(settings, train);
        var options = Recipes.Build(settings, spec);
        options.WorkspacePath = Path.GetFullPath(settings.Workspace ?? ".");
        options.ResumeFrom = settings.Resume is null ? null : Path.GetFullPath(settings.Resume);
        options.CancellationToken = cancellation;
        if (settings.Weights is { } weights && settings.Resume is null) ApplyWeights(options, weights, spec, cancellation);

        var style = TrainingProgress.StyleFor(console);
        int trainImages = validation is null && options.ValidationFraction is { } f ? (int)Math.Round(train.Items.Count * (1 - f)) : train.Items.Count;
        int stepsPerEpoch = (int)Math.Ceiling(trainImages / (double)(options.BatchSize * Math.Max(1, DataParallelEnvironment.LaunchedWorldSize)));
        options.LogEveryNSteps = Math.Clamp(stepsPerEpoch / 10, 1, 50);
        if (style != ProgressStyle.Silent) console.WriteLine(Header(spec, train, validation, options));

        var progress = new TrainingProgress(0, options.MaxEpochs, stepsPerEpoch);
        var (model, ml, schema) = progress.Run(console, style, callback =>
        {
            options.MetricsCallback = callback;
            // Written as soon as the run folder exists, so that a run killed later can still be resumed by its folder alone.
            options.RunFolderOpened = folder => RunRecord.Write(folder, settings);
            try
            {
                return Fit(train, validation, options);
            }
            catch (WeightMismatchException e)
            {
                throw new UserError($"--weights {settings.Weights} does not fit {spec.Name}: {NetworkFile.Mismatch(e)}. Use the architecture the weights were trained with (--arch), or other weights.");
            }
        });
        string? run = ((IEnumerable<ITransformer>)model).OfType<RegNetTransformer>().Single().RunPath;
        if (!DataParallelEnvironment.IsRoot || run is null) return 0;
        // The library's curves.png has no axes (it cannot use ScottPlot: see RegNetML.Tool.Plots); the tool redraws it.
        RunCharts.WriteCurves(RegNetRun.Load(run));
        if (cancellation.IsCancellationRequested)
        {
            console.WriteLine($"stopped: the latest checkpoint is {Path.Combine(run, "checkpoints", "latest.ckpt")}. Resume with:");
            console.Raw($"  regnet train --resume \"{run}\"");
            console.Raw($"run: {run}");
            return InterruptedExitCode;
        }
        string zip = Path.Combine(run, "model.zip");
        ml.Model.SaveAtomically(model, schema, zip);
        if (progress.LastValidation is { } v)
            console.WriteLine(FormattableString.Invariant($"validation: top-1 {v.Accuracy:P2}, top-5 {v.Top5Accuracy:P2}, loss {v.Loss:F4}"));
        console.Raw($"run: {run}");
        console.Raw($"model: {zip}");
        return 0;
    }

    private static ImageDataset? ValidationData(TrainSettings settings, ImageDataset train)
    {
        ImageDataset? validation = null;
        if (settings.Val is { } val) validation = ImageDataset.Load(val, "val");
        // An ImageNet layout brings its own validation split.
        else if (settings.ValFraction is null && Directory.Exists(Path.Combine(settings.Data!, "val")) && Directory.Exists(Path.Combine(settings.Data!, "train")))
            validation = ImageDataset.Load(settings.Data!, "val");
        if (validation is null) return null;
        if (validation.Items.Count == 0) throw new UserError($"The validation data {validation.Source} holds no images.");
        var unknown = validation.ClassNames.Except(train.ClassNames, StringComparer.Ordinal).ToList();
        if (unknown.Count > 0)
            throw new UserError($"The validation data {validation.Source} has classes the training data lacks ({string.Join(", ", unknown.Take(5))}). Use the same class names in both.");
        return validation;
    }

    private void ApplyWeights(RegNetTrainer.Options options, string weights, RegNetSpec spec, CancellationToken cancellation)
    {
        var (path, normalization, note) = StartingWeights.Resolve(weights, spec, cancellation);
        options.StartingWeightsPath = path;
        if (normalization is not null) options.Normalization = normalization;
        if (note is not null) console.WriteLine($"note: {note}");
    }

    private static (TransformerChain<KeyToValueMappingTransformer> Model, MLContext Ml, DataViewSchema Schema) Fit(ImageDataset train, ImageDataset? validation, RegNetTrainer.Options options)
    {
        var ml = new MLContext(options.Seed);
        var trainView = ml.Data.LoadFromEnumerable(train.Items);
        var keys = ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue).Fit(trainView);
        var keyed = keys.Transform(trainView);
        var images = ml.Transforms.LoadImages("Image", null, nameof(ImageItem.ImagePath));
        if (validation is not null)
        {
            var validationKeyed = keys.Transform(ml.Data.LoadFromEnumerable(validation.Items));
            options.ValidationSet = images.Fit(validationKeyed).Transform(validationKeyed);
        }
        var pipeline = images
            .Append(ml.MulticlassClassification.Trainers.RegNet(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        return (pipeline.Fit(keyed), ml, keyed.Schema);
    }

    private static string Header(RegNetSpec spec, ImageDataset train, ImageDataset? validation, RegNetTrainer.Options o) =>
        FormattableString.Invariant(
            $"training {spec.Name} on {train.Items.Count} images of {train.ClassNames.Count} classes") +
        (validation is not null ? $", validating on {validation.Items.Count}" : o.ValidationFraction is { } f ? FormattableString.Invariant($", validating on {f:P0} of them") : "") +
        FormattableString.Invariant($"; epochs {o.MaxEpochs}, batch {o.BatchSize}, {o.ImageSize} px, lr {o.LearningRate:G3}") +
        (o.ResumeFrom is { } r ? $"; resuming {r}" : "");
}
