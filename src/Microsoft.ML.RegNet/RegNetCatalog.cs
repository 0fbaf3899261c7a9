using Microsoft.ML.RegNet;
using Microsoft.ML.Runtime;

namespace Microsoft.ML;

/// <summary>RegNet trainers on ML.NET's multiclass classification catalog.</summary>
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

    // ML.NET's CatalogUtils.GetEnvironment is internal; the catalog exposes its environment through IInternalCatalog.
    private static IHostEnvironment EnvironmentOf(object catalog) =>
        catalog.GetType().GetInterface("Microsoft.ML.Data.IInternalCatalog")?.GetProperty("Environment")?.GetValue(catalog) as IHostEnvironment
        ?? throw new InvalidOperationException("This ML.NET version does not expose the catalog's environment; RegNetML supports Microsoft.ML 5.x.");
}
