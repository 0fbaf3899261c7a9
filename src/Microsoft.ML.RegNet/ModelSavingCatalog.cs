using Microsoft.ML.RegNet;

namespace Microsoft.ML;

/// <summary>Saving ML.NET models without putting the file already there at risk.</summary>
public static class ModelSavingCatalog
{
    /// <summary>
    /// Saves <paramref name="model"/> like <c>mlContext.Model.Save(model, inputSchema, filePath)</c>, but into a temporary
    /// file beside <paramref name="filePath"/> that is renamed over it only once the whole model is written and flushed.
    /// If any transformer in the model cannot be saved, the exception propagates and a file already at
    /// <paramref name="filePath"/> is left byte for byte as it was (ML.NET's own <c>Save</c> truncates it first).
    /// </summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">The fitted model (any ML.NET transformer, not only a RegNet).</param>
    /// <param name="inputSchema">The schema of the data the model was fitted on, or <see langword="null"/>.</param>
    /// <param name="filePath">The <c>model.zip</c> to write or replace; its folder is created if missing.</param>
    public static void SaveAtomically(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema? inputSchema, string filePath)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        AtomicFile.Write(filePath, stream => catalog.Save(model, inputSchema, stream));
    }
}
