using Microsoft.ML.RegNet.Runtime;

namespace Microsoft.ML.RegNet;

/// <summary>What <see cref="TorchRuntime.Configure"/> did to libtorch in this process, for logs, run folders and bug reports.</summary>
/// <param name="NativeAllocator">glibc malloc thresholds applied, or why they were left alone.</param>
/// <param name="OneDnnIsa">The oneDNN instruction-set cap: set here, set by the environment, or none.</param>
/// <param name="Nnpack">Whether NNPACK could start, and whether it was switched off.</param>
/// <param name="OneDnnMaxError">Largest float32-vs-float64 difference of the oneDNN convolution self-test (0 when oneDNN was already off).</param>
/// <param name="OneDnnMode">The <c>REGNET_ONEDNN</c> setting used: on, off or auto.</param>
/// <param name="OneDnnEnabled">Whether oneDNN convolutions stayed enabled.</param>
/// <param name="Threads">libtorch's intra-op thread count when it was configured.</param>
/// <param name="LibTorchWasLoaded">libtorch was already in use before the set-up, so a convolution may have run before the ISA cap.</param>
public sealed record TorchRuntimeReport(
    string NativeAllocator,
    string OneDnnIsa,
    string Nnpack,
    double OneDnnMaxError,
    string OneDnnMode,
    bool OneDnnEnabled,
    int Threads,
    bool LibTorchWasLoaded)
{
    /// <summary>Whether the oneDNN self-test found its convolutions within the tolerance (1e-2) of float64.</summary>
    public bool OneDnnCorrect => OneDnnMaxError <= ConvolutionErrorProbe.Tolerance;

    /// <summary>The self-test, ISA and NNPACK outcome in one line (the <c>convolution_self_test</c> field of a run's config.json).</summary>
    public string ConvolutionSelfTest => FormattableString.Invariant(
        $"oneDNN convolution max error {OneDnnMaxError:E2} ({(OneDnnCorrect ? "correct" : "wrong")}); {TorchRuntime.OneDnnVariable}={OneDnnMode}; oneDNN {(OneDnnEnabled ? "enabled" : "disabled")}; {OneDnnIsa}; {Nnpack}{(LibTorchWasLoaded ? "; libtorch was in use before the set-up" : "")}");

    /// <inheritdoc/>
    public override string ToString() => FormattableString.Invariant($"{ConvolutionSelfTest}; {NativeAllocator}; {Threads} threads");
}
