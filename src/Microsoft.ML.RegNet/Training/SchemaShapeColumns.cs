using System.Reflection;

using Microsoft.ML.Data;

namespace Microsoft.ML.RegNet.Training;

/// <summary><c>SchemaShape.Column</c>'s constructor is internal to third-party assemblies (conventions §1.9); this reaches it.</summary>
internal static class SchemaShapeColumns
{
    private static readonly ConstructorInfo Constructor = typeof(SchemaShape.Column)
        .GetConstructors(BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance)
        .Single(c => c.GetParameters().Length == 5);

    public static SchemaShape.Column Create(string name, SchemaShape.Column.VectorKind kind, DataViewType itemType, bool isKey, SchemaShape? annotations = null) =>
        (SchemaShape.Column)Constructor.Invoke(new object?[] { name, kind, itemType, isKey, annotations });

    /// <summary>Annotations holding a text vector (KeyValues, SlotNames).</summary>
    public static SchemaShape TextVectorAnnotations(params string[] names) =>
        new(names.Select(n => Create(n, SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false)));
}
