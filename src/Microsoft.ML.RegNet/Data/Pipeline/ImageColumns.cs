using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.RegNet.Data.Pipeline;

/// <summary>The image column (an <c>MLImage</c> or encoded bytes) and optional UInt32 key label column the pipeline reads.</summary>
internal readonly record struct ImageColumns(DataViewSchema.Column Image, bool IsBytes, DataViewSchema.Column? Label)
{
    /// <summary>The one check of an image column's type: true for encoded bytes (<c>LoadRawImageBytes</c>), false for an
    /// image (<c>LoadImages</c>), null for anything else.</summary>
    public static bool? IsEncodedBytes(DataViewType type) => type switch
    {
        ImageDataViewType => false,
        VectorDataViewType { ItemType: NumberDataViewType n } when n.RawType == typeof(byte) => true,
        _ => null,
    };

    public static ImageColumns Resolve(DataViewSchema schema, string imageColumn, string? labelColumn)
    {
        string Known() => string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}'"));
        var image = schema.GetColumnOrNull(imageColumn)
            ?? throw new ArgumentException($"The data has no image column '{imageColumn}' (columns: {Known()}).");
        bool isBytes = IsEncodedBytes(image.Type) ?? throw new ArgumentException(
            $"Column '{imageColumn}' has type {image.Type}; expected an image (LoadImages) or a byte vector (LoadRawImageBytes).");
        if (labelColumn is null) return new ImageColumns(image, isBytes, null);
        var label = schema.GetColumnOrNull(labelColumn)
            ?? throw new ArgumentException($"The data has no label column '{labelColumn}' (columns: {Known()}).");
        if (label.Type is not KeyDataViewType { RawType: var raw } || raw != typeof(uint))
            throw new ArgumentException($"Label column '{labelColumn}' has type {label.Type}; expected a UInt32 key (use MapValueToKey).");
        return new ImageColumns(image, isBytes, label);
    }
}
