using System.Reflection;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.RegNet;

/// <summary>
/// The one place that reaches ML.NET internals by reflection, each because no public route exists for a third-party
/// trainer: the MLContext's seed, GPU device id and CPU fallback (ML.NET's own trainers read them through an internal
/// interface) and <c>SchemaShape.Column</c>'s constructor (internal, yet every estimator must return schema shapes). Each member fails
/// with a message naming what this ML.NET version lacks, never silently.
/// </summary>
internal static class MLNetInternals
{
    private static readonly ConstructorInfo? SchemaColumnConstructor = typeof(SchemaShape.Column)
        .GetConstructors(BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance)
        .SingleOrDefault(c => c.GetParameters().Length == 5);

    /// <summary>A schema-shape column (name, kind, item type, key, annotations).</summary>
    public static SchemaShape.Column SchemaColumn(string name, SchemaShape.Column.VectorKind kind, DataViewType itemType, bool isKey, SchemaShape? annotations = null) =>
        (SchemaShape.Column)(SchemaColumnConstructor ?? throw new InvalidOperationException(
                "This ML.NET version has no SchemaShape.Column(name, kind, type, isKey, annotations) constructor; RegNetML supports Microsoft.ML 5.x."))
            .Invoke(new object?[] { name, kind, itemType, isKey, annotations });

    /// <summary>Annotations holding a text vector (KeyValues, SlotNames).</summary>
    public static SchemaShape TextVectorAnnotations(params string[] names) =>
        new(names.Select(n => SchemaColumn(n, SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false)));

    /// <summary>The seed an MLContext was created with, or null when it has none.</summary>
    public static int? Seed(IHostEnvironment environment) =>
        environment.GetType().GetInterface("Microsoft.ML.Runtime.IHostEnvironmentInternal")
            ?.GetProperty("Seed", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)?.GetValue(environment) as int?;

    /// <summary>The MLContext's <c>GpuDeviceId</c> (ML.NET passes it to trainers only through an internal interface).</summary>
    public static int? GpuDeviceId(IHostEnvironment environment) => (int?)EnvironmentProperty(environment, "GpuDeviceId");

    /// <summary>The MLContext's <c>FallbackToCpu</c>.</summary>
    public static bool FallbackToCpu(IHostEnvironment environment) => EnvironmentProperty(environment, "FallbackToCpu") as bool? ?? false;

    private static object? EnvironmentProperty(IHostEnvironment environment, string name)
    {
        var property = environment.GetType().GetInterface("Microsoft.ML.Runtime.IHostEnvironmentInternal")
            ?.GetProperty(name, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
            ?? throw new InvalidOperationException($"This ML.NET version's environment has no {name}; RegNetML supports Microsoft.ML 5.x.");
        return property.GetValue(environment);
    }

    /// <summary>The seed of the MLContext behind a catalog (<c>mlContext.Data</c>, <c>mlContext.Transforms</c>), or null.</summary>
    public static int? Seed(object catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var environment = catalog.GetType().GetInterface("Microsoft.ML.Data.IInternalCatalog")
            ?.GetProperty("Environment", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)?.GetValue(catalog);
        return environment is IHostEnvironment env ? Seed(env) : null;
    }
}
