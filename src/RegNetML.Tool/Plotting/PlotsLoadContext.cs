using System.Reflection;
using System.Runtime.Loader;

namespace RegNetML.Tool.Plotting;

/// <summary>
/// Loads RegNetML.Tool.Plots (ScottPlot) from plots/ beside the tool into a load context of its own, with its own
/// SkiaSharp 3.x and native libSkiaSharp: ML.NET's image loading in the default context needs SkiaSharp 2.88, and one
/// context cannot hold both versions. Calls cross by reflection with plain types only.
/// </summary>
internal sealed class PlotsLoadContext : AssemblyLoadContext
{
    private const string AssemblyFile = "RegNetML.Tool.Plots.dll";
    private static readonly Lazy<Func<string, int, int, byte[]>> Renderer = new(LoadRenderer);
    private readonly AssemblyDependencyResolver _resolver;

    private PlotsLoadContext(string mainAssembly) : base("regnet-plots") => _resolver = new AssemblyDependencyResolver(mainAssembly);

    /// <summary>Renders panels (JSON, see RegNetML.Tool.Plots.Charts) side by side as one PNG.</summary>
    public static byte[] RenderPng(string panelsJson, int panelWidth, int height) => Renderer.Value(panelsJson, panelWidth, height);

    private static Func<string, int, int, byte[]> LoadRenderer()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "plots", AssemblyFile);
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"The plotting component {path} is missing, so no chart can be drawn. Reinstall the tool, or rebuild it (dotnet build src/RegNetML.Tool) when running from the repository.", path);
        var context = new PlotsLoadContext(path);
        var charts = context.LoadFromAssemblyPath(path).GetType("RegNetML.Tool.Plots.Charts", throwOnError: true)!;
        var method = charts.GetMethod("RenderPng", BindingFlags.Public | BindingFlags.Static)
            ?? throw new MissingMethodException($"{path} has no RegNetML.Tool.Plots.Charts.RenderPng; it belongs to another version of the tool. Reinstall the tool.");
        return method.CreateDelegate<Func<string, int, int, byte[]>>();
    }

    protected override Assembly? Load(AssemblyName assemblyName) =>
        _resolver.ResolveAssemblyToPath(assemblyName) is { } path ? LoadFromAssemblyPath(path) : null;

    // Skia's and HarfBuzz's native libraries must come from plots/: the default context would hand out the tool's own
    // libSkiaSharp 2.88, which SkiaSharp 3 refuses with a version message that does not say where the right one is.
    protected override nint LoadUnmanagedDll(string unmanagedDllName)
    {
        if (_resolver.ResolveUnmanagedDllToPath(unmanagedDllName) is { } path) return LoadUnmanagedDllFromPath(path);
        if (unmanagedDllName.Contains("SkiaSharp", StringComparison.Ordinal) || unmanagedDllName.Contains("HarfBuzzSharp", StringComparison.Ordinal))
            throw new DllNotFoundException(
                $"The plotting component has no {unmanagedDllName} for {System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier} " +
                $"under {Path.Combine(AppContext.BaseDirectory, "plots", "runtimes")}; charts are drawn on linux-x64, win-x64 and macOS.");
        return nint.Zero;
    }
}
