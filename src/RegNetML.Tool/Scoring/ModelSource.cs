using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet;
using RegNetML.Tool.Data;

namespace RegNetML.Tool.Scoring;

/// <summary>
/// A trained classifier from wherever the user has one: a run folder (its model.zip, else its latest checkpoint), a
/// <c>model.zip</c>, or a weight file that describes its architecture (own format, checkpoint, Keras .h5).
/// </summary>
internal sealed class ModelSource
{
    private readonly Func<IDataView, IDataView> _score;

    private ModelSource(MLContext ml, string path, IReadOnlyList<string> classNames, Func<IDataView, IDataView> score)
    {
        (Ml, Path, ClassNames, _score) = (ml, path, classNames, score);
    }

    public MLContext Ml { get; }
    /// <summary>The file the model came from.</summary>
    public string Path { get; }
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The run folder's file to use: what was saved at the end, else the last checkpoint.</summary>
    public static string Resolve(string source)
    {
        if (File.Exists(source)) return System.IO.Path.GetFullPath(source);
        if (!Directory.Exists(source))
            throw new UserError($"{source} does not exist. Pass a run folder, a model.zip or a weight file.");
        foreach (var candidate in new[] { "model.zip", System.IO.Path.Combine("checkpoints", "latest.ckpt") })
            if (File.Exists(System.IO.Path.Combine(source, candidate))) return System.IO.Path.GetFullPath(System.IO.Path.Combine(source, candidate));
        throw new UserError($"{source} is not a run folder with a model: it has neither model.zip nor checkpoints/latest.ckpt. Pass the folder printed as 'run: …' by regnet train.");
    }

    public static ModelSource Open(string source)
    {
        string path = Resolve(source);
        var ml = new MLContext(seed: 1);
        return path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase) ? OpenZip(ml, path) : OpenWeights(ml, path);
    }

    /// <summary>Softmax probabilities (one array per image, in <see cref="ClassNames"/> order) of the images, in order.</summary>
    public List<float[]> Score(IReadOnlyList<ImageItem> images)
    {
        foreach (var image in images)
            if (ImageCheck.Check(image) is { Error: { } error } finding)
                throw new UserError($"{finding.Path}: {error}. Remove it or fix it ('regnet data check' lists every bad file).");
        var scored = _score(Ml.Data.LoadFromEnumerable(images));
        return Ml.Data.CreateEnumerable<ScoreRow>(scored, reuseRowObject: false).Select(r => r.Score).ToList();
    }

    private sealed class ScoreRow
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    private static ModelSource OpenZip(MLContext ml, string path)
    {
        ITransformer model;
        try
        {
            model = ml.Model.Load(path, out _);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or InvalidDataException)
        {
            throw new UserError($"{path} is not a model.zip that ML.NET can load ({e.Message}). Pass a model.zip written by regnet train or mlContext.Model.Save.");
        }
        var probe = ml.Data.LoadFromEnumerable(Array.Empty<ImageItem>());
        var schema = model.GetOutputSchema(probe.Schema);
        if (schema.GetColumnOrNull("Score") is not { } score || !score.HasSlotNames())
            throw new UserError($"{path} is an ML.NET model without a 'Score' column with class names; it is not a RegNet classifier saved by regnet.");
        VBuffer<ReadOnlyMemory<char>> names = default;
        score.GetSlotNames(ref names);
        return new ModelSource(ml, path, names.DenseValues().Select(n => n.ToString()).ToList(), model.Transform);
    }

    private static ModelSource OpenWeights(MLContext ml, string path)
    {
        using var network = NetworkFile.Load(path);
        if (network.Model.NumberOfClasses == 0)
            throw new UserError($"{path} has no classifier (a _notop file); it cannot classify. Fine-tune it with 'regnet train <data> --weights {path}'.");
        var images = ml.Transforms.LoadImages("Image", null, nameof(ImageItem.ImagePath));
        var scorer = RegNetOnnxScoring.CreateTransformer(ml, network.Model, network.Report.Preprocessing, network.ClassNames, "Image");
        return new ModelSource(ml, path, network.ClassNames, view => scorer.Transform(images.Fit(view).Transform(view)));
    }
}
