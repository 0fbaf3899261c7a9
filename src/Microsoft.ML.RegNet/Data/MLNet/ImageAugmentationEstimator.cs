using System.Reflection;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.RegNet.Data.MLNet;

/// <summary>
/// Estimator of an image augmentation over an <c>MLImage</c> column (see <see cref="ImageAugmentationCatalog"/>).
/// Trivial: it only checks the schema and returns an <see cref="ImageAugmentationTransformer"/>.
/// </summary>
public sealed class ImageAugmentationEstimator : IEstimator<ImageAugmentationTransformer>
{
    private readonly ImageOperation _operation;
    private readonly int _seed;

    internal ImageAugmentationEstimator(ImageOperation operation, string outputColumnName, string inputColumnName, int seed)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputColumnName);
        ArgumentException.ThrowIfNullOrEmpty(inputColumnName);
        _operation = operation;
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        _seed = seed;
    }

    /// <summary>Output column.</summary>
    public string OutputColumnName { get; }

    /// <summary>Input image column.</summary>
    public string InputColumnName { get; }

    /// <inheritdoc/>
    public ImageAugmentationTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var transformer = new ImageAugmentationTransformer(_operation, OutputColumnName, InputColumnName, _seed);
        transformer.GetOutputSchema(input.Schema); // validates the input column
        return transformer;
    }

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var found = inputSchema.Where(c => c.Name == InputColumnName).ToList();
        if (found.Count == 0)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Input column '{InputColumnName}' not found.");
        var column = found[^1];
        if (column.ItemType is not ImageDataViewType inputType || column.Kind != SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Column '{InputColumnName}' must be an image (LoadImages), not {column.ItemType}.");
        var outputType = _operation.OutputWidth > 0 ? new ImageDataViewType(_operation.OutputHeight, _operation.OutputWidth) : inputType;
        var columns = inputSchema.Where(c => c.Name != OutputColumnName).ToList();
        columns.Add(MakeColumn(OutputColumnName, outputType));
        return new SchemaShape(columns);
    }

    // SchemaShape.Column's constructor is internal to Microsoft.ML.Core (mlnet_conventions §1.9); this is the tested route.
    private static SchemaShape.Column MakeColumn(string name, DataViewType type)
    {
        var ctor = typeof(SchemaShape.Column).GetConstructors(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
            .FirstOrDefault(c => c.GetParameters().Length == 5)
            ?? throw new InvalidOperationException("SchemaShape.Column has no (name, kind, type, isKey, annotations) constructor in this ML.NET version.");
        return (SchemaShape.Column)ctor.Invoke(new object?[] { name, SchemaShape.Column.VectorKind.Scalar, type, false, null });
    }
}
