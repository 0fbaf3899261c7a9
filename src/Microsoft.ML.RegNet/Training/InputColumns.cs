using Microsoft.ML.Data;

namespace Microsoft.ML.RegNet.Training;

/// <summary>The label and image columns of a data view, checked, with the class names from the label's key values.</summary>
internal sealed record InputColumns(KeyDataViewType LabelType, IReadOnlyList<string> ClassNames, bool ImageIsBytes)
{
    public int NumberOfClasses => ClassNames.Count;

    public static InputColumns Resolve(DataViewSchema schema, string labelColumn, string imageColumn, string what)
    {
        var label = schema.GetColumnOrNull(labelColumn)
            ?? throw new ArgumentException($"The {what} has no label column '{labelColumn}'. Columns: {string.Join(", ", schema.Select(c => c.Name))}.");
        if (label.Type is not KeyDataViewType key || key.RawType != typeof(uint))
            throw new ArgumentException(RegNetTrainer.LabelNotKeyMessage(labelColumn, label.Type));
        if (key.Count < 2 || key.Count > int.MaxValue)
            throw new ArgumentException($"The label column '{labelColumn}' of the {what} has {key.Count} classes; RegNet needs at least 2.");

        var image = schema.GetColumnOrNull(imageColumn)
            ?? throw new ArgumentException($"The {what} has no image column '{imageColumn}'. Load images with mlContext.Transforms.LoadImages " +
                                           $"or LoadRawImageBytes into a column named '{imageColumn}', or set ImageColumnName.");
        bool isBytes = Data.Pipeline.ImageColumns.IsEncodedBytes(image.Type) ?? throw new ArgumentException(
            $"The image column '{imageColumn}' of the {what} has type {image.Type}; RegNet needs an image " +
            "(mlContext.Transforms.LoadImages) or encoded image bytes (mlContext.Transforms.LoadRawImageBytes).");
        return new InputColumns(key, ClassNamesOf(label, (int)key.Count), isBytes);
    }

    private static string[] ClassNamesOf(DataViewSchema.Column label, int count)
    {
        var names = Enumerable.Range(1, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var keyValues = label.Annotations.Schema.GetColumnOrNull(AnnotationUtilsKeyValues);
        if (keyValues is null) return names;
        var type = keyValues.Value.Type as VectorDataViewType;
        if (type?.ItemType is TextDataViewType)
        {
            VBuffer<ReadOnlyMemory<char>> values = default;
            label.Annotations.GetValue(AnnotationUtilsKeyValues, ref values);
            var dense = values.DenseValues().Select(v => v.ToString()).ToArray();
            if (dense.Length == count) return dense;
        }
        else if (type is not null)
        {
            // Key values of another type (numbers): show them as text.
            var getter = typeof(InputColumns).GetMethod(nameof(KeyValuesAsText), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
                .MakeGenericMethod(type.ItemType.RawType);
            if (getter.Invoke(null, new object[] { label }) is string[] text && text.Length == count) return text;
        }
        return names;
    }

    private static string[] KeyValuesAsText<T>(DataViewSchema.Column label)
    {
        VBuffer<T> values = default;
        label.Annotations.GetValue(AnnotationUtilsKeyValues, ref values);
        return values.DenseValues().Select(v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? "").ToArray();
    }

    internal const string AnnotationUtilsKeyValues = "KeyValues";
}
