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
    /// <param name="architecture">One of the 24 RegNets (<c>X002</c> … <c>Y320</c>).</param>
    /// <param name="labelColumnName">Key-typed label column.</param>
    /// <param name="imageColumnName">Image column (<c>LoadImages</c>) or encoded bytes (<c>LoadRawImageBytes</c>).</param>
    /// <param name="scoreColumnName">Output probabilities.</param>
    /// <param name="predictedLabelColumnName">Output predicted key.</param>
    /// <param name="batchSize">Images per step.</param>
    /// <param name="maxEpochs">Epochs.</param>
    /// <param name="validationSet">Data evaluated after every epoch.</param>
    public static RegNetTrainer RegNet(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string architecture = "X002", string labelColumnName = "Label", string imageColumnName = "Image",
        string scoreColumnName = "Score", string predictedLabelColumnName = "PredictedLabel",
        int batchSize = 32, int maxEpochs = 10, IDataView? validationSet = null) =>
        catalog.RegNet(new RegNetTrainer.Options
        {
            Architecture = architecture, LabelColumnName = labelColumnName, ImageColumnName = imageColumnName,
            ScoreColumnName = scoreColumnName, PredictedLabelColumnName = predictedLabelColumnName,
            BatchSize = batchSize, MaxEpochs = maxEpochs, ValidationSet = validationSet,
        });

    /// <summary>Trains a RegNet image classifier with every option of <see cref="RegNetTrainer.Options"/>.</summary>
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
