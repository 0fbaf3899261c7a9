using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Runtime;

/// <summary>
/// The one place that turns a device request into a libtorch device, following ML.NET's convention: an explicit
/// request (<c>RegNetTrainer.Options.Device</c>) wins; otherwise <c>MLContext.GpuDeviceId</c> asks for that CUDA device
/// and its absence means the CPU. A CUDA device that this process cannot use is an error, or the CPU with a warning when
/// <c>MLContext.FallbackToCpu</c> is true. Every tensor the library creates for training or scoring is created on, or
/// moved to, the device chosen here.
/// </summary>
internal static class ComputeDevice
{
    /// <summary>Resolves a request.</summary>
    /// <param name="requested">"cpu", "cuda" or "cuda:N"; null to follow <paramref name="gpuDeviceId"/>.</param>
    /// <param name="gpuDeviceId">The MLContext's GPU device id (null: CPU unless <paramref name="requested"/> says otherwise).</param>
    /// <param name="fallbackToCpu">The MLContext's FallbackToCpu.</param>
    /// <param name="warn">Receives the warning when a GPU was asked for and the CPU is used instead.</param>
    /// <param name="cudaDevices">CUDA devices this process can use (null: ask libtorch).</param>
    public static Device Resolve(string? requested, int? gpuDeviceId, bool fallbackToCpu, Action<string> warn, int? cudaDevices = null)
    {
        var (type, index, source) = Parse(requested, gpuDeviceId);
        if (type == DeviceType.CPU) return CPU;
        int available = cudaDevices ?? (cuda.is_available() ? cuda.device_count() : 0);
        if (index < available) return new Device(DeviceType.CUDA, index);
        string why = available == 0
            ? "CUDA is not available in this process (the libtorch it loaded is a CPU build, e.g. the TorchSharp-cpu package, or no GPU is visible)"
            : $"this process sees {available} CUDA device(s) (0–{available - 1})";
        string message = $"{source} asks for CUDA device {index}, but {why}.";
        if (fallbackToCpu)
        {
            warn($"{message} Training and scoring run on the CPU (MLContext.FallbackToCpu is true).");
            return CPU;
        }
        throw new InvalidOperationException(
            $"{message} Reference a CUDA build of libtorch (TorchSharp-cuda-linux or TorchSharp-cuda-windows instead of TorchSharp-cpu), " +
            "choose another device, or set mlContext.FallbackToCpu = true to train on the CPU instead.");
    }

    /// <summary>Checks the syntax of a request without touching libtorch (the trainer's option validation).</summary>
    public static void Validate(string? requested) => Parse(requested, null);

    private static (DeviceType Type, int Index, string Source) Parse(string? requested, int? gpuDeviceId)
    {
        if (requested is null)
        {
            if (gpuDeviceId is not { } id) return (DeviceType.CPU, 0, "");
            if (id < 0) throw new ArgumentOutOfRangeException(nameof(gpuDeviceId), id, "MLContext.GpuDeviceId must be 0 or more.");
            return (DeviceType.CUDA, id, $"MLContext.GpuDeviceId = {id}");
        }
        string text = requested.Trim().ToLowerInvariant();
        string source = $"Device = \"{requested}\"";
        if (text == "cpu") return (DeviceType.CPU, 0, source);
        if (text == "cuda") return (DeviceType.CUDA, gpuDeviceId ?? 0, source);
        if (text.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(text.AsSpan(5), out int index) && index >= 0)
            return (DeviceType.CUDA, index, source);
        throw new ArgumentException(
            $"Unknown device \"{requested}\". Use \"cpu\", \"cuda\" or \"cuda:N\" (N = 0, 1, …), or leave Device null to follow MLContext.GpuDeviceId.",
            nameof(requested));
    }
}
