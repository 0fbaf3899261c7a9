using Microsoft.ML.RegNet;
using Microsoft.ML.Runtime;

namespace Microsoft.ML;

/// <summary>RegNet trainers on ML.NET's multiclass classification catalog, and the RegNet featurizer on its transforms catalog.</summary>
public static class RegNetCatalog
{
    /// <summary>
    /// Trains a RegNet image classifier: <c>mlContext.MulticlassClassification.Trainers.RegNet("X040")</c>.
    /// </summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="architecture">One of the 24 RegNets (<c>X002</c> … <c>Y320</c>, also <c>RegNetX002</c> or <c>regnetx_002</c>); default <c>X002</c>.</param>
    /// <param name="labelColumnName">Key-typed label column (<c>MapValueToKey</c> before the trainer); default <c>Label</c>.</param>
    /// <param name="imageColumnName">Image column (<c>LoadImages</c>) or encoded bytes (<c>LoadRawImageBytes</c>); default <c>Image</c>.</param>
    /// <param name="scoreColumnName">Output column of softmax probabilities, one per class; default <c>Score</c>.</param>
    /// <param name="predictedLabelColumnName">Output column of the predicted class (a key like the label); default <c>PredictedLabel</c>.</param>
    /// <param name="batchSize">Images per optimizer step (32), at least 1.</param>
    /// <param name="maxEpochs">Passes over the training data (10), at least 1.</param>
    /// <param name="validationSet">Data evaluated after every epoch (null: none); same label key type as the training data.</param>
    /// <param name="pretrained">Start from these published weights of <paramref name="architecture"/> (null: random weights), with
    /// their preprocessing (see <see cref="RegNetTrainer.Options.Pretrained"/>).</param>
    /// <returns>The trainer: an estimator whose <c>Fit</c> returns a <see cref="RegNetTransformer"/>.</returns>
    /// <exception cref="ArgumentException">The architecture name is unknown, or a value is out of range.</exception>
    public static RegNetTrainer RegNet(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string architecture = "X002", string labelColumnName = "Label", string imageColumnName = "Image",
        string scoreColumnName = "Score", string predictedLabelColumnName = "PredictedLabel",
        int batchSize = 32, int maxEpochs = 10, IDataView? validationSet = null, PretrainedSource? pretrained = null) =>
        catalog.RegNet(new RegNetTrainer.Options
        {
            Architecture = architecture, LabelColumnName = labelColumnName, ImageColumnName = imageColumnName,
            ScoreColumnName = scoreColumnName, PredictedLabelColumnName = predictedLabelColumnName,
            BatchSize = batchSize, MaxEpochs = maxEpochs, ValidationSet = validationSet, Pretrained = pretrained,
        });

    /// <summary>Trains a RegNet image classifier with every option of <see cref="RegNetTrainer.Options"/>.</summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="options">The training recipe; read when the trainer is made and again by <c>Fit</c>.</param>
    /// <returns>The trainer: an estimator whose <c>Fit</c> returns a <see cref="RegNetTransformer"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="catalog"/> or <paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">An option is out of range (the message names it) or the architecture name is unknown.</exception>
    public static RegNetTrainer RegNet(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, RegNetTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new RegNetTrainer(EnvironmentOf(catalog), options);
    }

    /// <summary>
    /// Pooled features of a pretrained RegNet (the network without its classifier, <c>include_top=False</c> with average
    /// pooling), as a vector column for any ML.NET trainer: <c>mlContext.Transforms.RegNetFeatures("Features", "Image", "X002")</c>,
    /// like ML.NET's <c>DnnFeaturizeImage</c>. Images are resized and centre-cropped as in evaluation and normalised the way the
    /// weights expect. The estimator is made of ML.NET's own transforms around an embedded ONNX export, so a pipeline with it
    /// saves and loads with <c>mlContext.Model.Save</c>/<c>Load</c>.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Output column: <c>Vector&lt;Single&gt;</c> of the model's last stage width (368 for X002).</param>
    /// <param name="inputColumnName">Input <c>MLImage</c> column (from <c>LoadImages</c>), any size.</param>
    /// <param name="architecture">One of the 24 RegNets.</param>
    /// <param name="pretrained">Published weights to use, found through <see cref="PretrainedCatalog"/> (default Keras); null with <paramref name="weightsPath"/>.</param>
    /// <param name="weightsPath">A weight file of <paramref name="architecture"/> in any format <see cref="RegNetWeights"/> reads, instead of <paramref name="pretrained"/>.</param>
    /// <param name="imageSize">Side of the square network input (224).</param>
    /// <param name="pretrainedOptions">Where pretrained files are looked for (offline mode, cache, mirror); null: the defaults.</param>
    /// <returns>An estimator whose transformer adds <paramref name="outputColumnName"/>.</returns>
    /// <exception cref="ArgumentException">Neither or both of <paramref name="pretrained"/> and <paramref name="weightsPath"/>, or an unknown architecture.</exception>
    /// <exception cref="FileNotFoundException">Offline and the pretrained file is not there (the message says where to put it).</exception>
    public static IEstimator<ITransformer> RegNetFeatures(this TransformsCatalog catalog, string outputColumnName = "Features", string inputColumnName = "Image",
        string architecture = "X002", PretrainedSource? pretrained = PretrainedSource.Keras, string? weightsPath = null, int imageSize = 224,
        PretrainedOptions? pretrainedOptions = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        if ((pretrained is null) == (weightsPath is null))
            throw new ArgumentException("Give either pretrained (published weights by name) or weightsPath (a file of the architecture), not both or neither.", nameof(weightsPath));
        var loaded = pretrained is { } source
            ? PretrainedWeights.LoadAsync(architecture, source, numberOfClasses: 0, pretrainedOptions).GetAwaiter().GetResult()
            : LoadHeadless(architecture, weightsPath!);
        using var model = loaded.Model;
        var preprocessing = loaded.Report.Preprocessing with { ImageSize = imageSize };
        return Microsoft.ML.RegNet.Onnx.FeaturizerChain.Create(model, preprocessing, outputColumnName, inputColumnName);
    }

    /// <summary>Pooled features of a trained (for example fine-tuned) RegNet: its network without the classifier, with its preprocessing.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="model">The trained transformer (from <c>Fit</c>); its weights are exported, it is not kept.</param>
    /// <param name="outputColumnName">Output column: <c>Vector&lt;Single&gt;</c> of the model's last stage width.</param>
    /// <param name="inputColumnName">Input <c>MLImage</c> column (from <c>LoadImages</c>), any size.</param>
    /// <returns>An estimator whose transformer adds <paramref name="outputColumnName"/>.</returns>
    public static IEstimator<ITransformer> RegNetFeatures(this TransformsCatalog catalog, RegNetTransformer model, string outputColumnName = "Features",
        string inputColumnName = "Image")
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        return Microsoft.ML.RegNet.Onnx.FeaturizerChain.Create(model.Model, model.Preprocessing, outputColumnName, inputColumnName);
    }

    private static LoadedRegNet LoadHeadless(string architecture, string path)
    {
        var model = new RegNetModel(RegNetSpec.FromName(architecture), numberOfClasses: 0);
        try
        {
            return new LoadedRegNet(model, RegNetWeights.Load(model, path));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    // ML.NET's CatalogUtils.GetEnvironment is internal; the catalog exposes its environment through IInternalCatalog.
    private static IHostEnvironment EnvironmentOf(object catalog) =>
        catalog.GetType().GetInterface("Microsoft.ML.Data.IInternalCatalog")?.GetProperty("Environment")?.GetValue(catalog) as IHostEnvironment
        ?? throw new InvalidOperationException("This ML.NET version does not expose the catalog's environment; RegNetML supports Microsoft.ML 5.x.");
}
