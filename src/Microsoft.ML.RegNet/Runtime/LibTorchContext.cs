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

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GlobalContextFn();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.U1)]
    private delegate bool GetFlagFn(IntPtr context);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void SetFlagFn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool value);

    private static readonly Lazy<(IntPtr Context, GetFlagFn Get, SetFlagFn Set)?> Functions = new(Bind);

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

    private static (IntPtr, GetFlagFn, SetFlagFn)? Bind()
    {
        if (!OperatingSystem.IsLinux()) return null;
        using (torch.ones(1)) { } // make sure TorchSharp has loaded libtorch
        string? path = File.ReadLines("/proc/self/maps")
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(fields => fields.Length >= 6)
            .Select(fields => fields[^1])
            .FirstOrDefault(p => p.EndsWith("/libtorch_cpu.so", StringComparison.Ordinal));
        if (path is null) return null;
        IntPtr library = NativeLibrary.Load(path); // already mapped: dlopen returns the loaded instance
        if (!NativeLibrary.TryGetExport(library, GlobalContextSymbol, out var globalContext)
            || !NativeLibrary.TryGetExport(library, GetMkldnnSymbol, out var get)
            || !NativeLibrary.TryGetExport(library, SetMkldnnSymbol, out var set))
            return null;
        IntPtr context = Marshal.GetDelegateForFunctionPointer<GlobalContextFn>(globalContext)();
        return (context, Marshal.GetDelegateForFunctionPointer<GetFlagFn>(get), Marshal.GetDelegateForFunctionPointer<SetFlagFn>(set));
    }
}
