using System.Runtime.InteropServices;
using TorchSharp;

namespace Microsoft.ML.RegNet.Runtime;

/// <summary>
/// The one libtorch switch TorchSharp 0.107 does not expose: <c>at::globalContext().setUserEnabledMkldnn(bool)</c>,
/// called through its exported C++ symbols (Itanium ABI: a member function takes <c>this</c> as its first argument).
/// </summary>
internal static class LibTorchContext
{
    private const string GlobalContextSymbol = "_ZN2at13globalContextEv";
    private const string GetMkldnnSymbol = "_ZNK2at7Context17userEnabledMkldnnEv";
    private const string SetMkldnnSymbol = "_ZN2at7Context20setUserEnabledMkldnnEb";
    private const string SetNnpackSymbol = "_ZN2at7Context20setUserEnabledNNPACKEb";
    private const string NnpackAvailableSymbol = "_ZN2at6native17_nnpack_availableEv";

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GlobalContextFn();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.U1)]
    private delegate bool GetFlagFn(IntPtr context);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void SetFlagFn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool value);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.U1)]
    private delegate bool StaticFlagFn();

    private static readonly Lazy<(IntPtr Context, GetFlagFn Get, SetFlagFn Set)?> Functions = new(Bind);
    private static readonly Lazy<(StaticFlagFn Available, SetFlagFn Set)?> Nnpack = new(BindNnpack);

    /// <summary>
    /// Whether NNPACK could initialise on this CPU. Where it cannot, libtorch tries again and logs
    /// "Could not initialize NNPACK" on every convolution that could use it, so <see cref="TorchRuntime"/> switches it off.
    /// </summary>
    public static bool NnpackAvailable => Nnpack.Value is not { } n || n.Available();

    /// <summary>Turns libtorch's use of NNPACK off (no-op where the symbols are not available).</summary>
    public static void DisableNnpack()
    {
        if (Nnpack.Value is { } n && Functions.Value is { } f) n.Set(f.Context, false);
    }

    /// <summary>oneDNN use; reads false and ignores writes where the symbols are not available (non-Linux builds).</summary>
    public static bool MkldnnEnabled
    {
        get => Functions.Value is { } f && f.Get(f.Context);
        set
        {
            if (Functions.Value is { } f) f.Set(f.Context, value);
            else if (!value) throw new PlatformNotSupportedException("libtorch's global context is not reachable on this platform; oneDNN cannot be switched off.");
        }
    }

    private static (StaticFlagFn, SetFlagFn)? BindNnpack()
    {
        if (LibraryHandle() is not { } library
            || !NativeLibrary.TryGetExport(library, NnpackAvailableSymbol, out var available)
            || !NativeLibrary.TryGetExport(library, SetNnpackSymbol, out var set))
            return null;
        return (Marshal.GetDelegateForFunctionPointer<StaticFlagFn>(available), Marshal.GetDelegateForFunctionPointer<SetFlagFn>(set));
    }

    private static IntPtr? LibraryHandle()
    {
        if (!OperatingSystem.IsLinux()) return null;
        using (torch.ones(1)) { } // make sure TorchSharp has loaded libtorch
        string? path = File.ReadLines("/proc/self/maps")
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(fields => fields.Length >= 6)
            .Select(fields => fields[^1])
            .FirstOrDefault(p => p.EndsWith("/libtorch_cpu.so", StringComparison.Ordinal));
        return path is null ? null : NativeLibrary.Load(path); // already mapped: dlopen returns the loaded instance
    }

    private static (IntPtr, GetFlagFn, SetFlagFn)? Bind()
    {
        if (LibraryHandle() is not { } library) return null;
        if (!NativeLibrary.TryGetExport(library, GlobalContextSymbol, out var globalContext)
            || !NativeLibrary.TryGetExport(library, GetMkldnnSymbol, out var get)
            || !NativeLibrary.TryGetExport(library, SetMkldnnSymbol, out var set))
            return null;
        IntPtr context = Marshal.GetDelegateForFunctionPointer<GlobalContextFn>(globalContext)();
        return (context, Marshal.GetDelegateForFunctionPointer<GetFlagFn>(get), Marshal.GetDelegateForFunctionPointer<SetFlagFn>(set));
    }
}
