using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.RegNet.Onnx;

namespace Microsoft.ML.RegNet;

/// <summary>
/// Batched scoring through ONNX Runtime directly (no ML.NET data view): N×3×H×W float input in, N×C output out.
/// Thread-safe for concurrent <see cref="Score(float[], int)"/> calls (ONNX Runtime sessions are).
/// </summary>
public sealed class RegNetOnnxSession : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string _inputName;
    private readonly string _outputName;
    private readonly long[] _inputDims;

    /// <summary>Opens an exported ONNX file.</summary>
    /// <param name="modelPath">The .onnx file.</param>
    /// <param name="intraOpThreads">Threads inside one operator; 0 lets ONNX Runtime choose (all physical cores).</param>
    /// <param name="outputName">Which output <see cref="Score(float[], int)"/> returns; null = the first one.</param>
    /// <param name="gpuDeviceId">A CUDA device to score on through ONNX Runtime's CUDA provider (as ML.NET's <c>ApplyOnnxModel</c>
    /// takes it); needs the <c>Microsoft.ML.OnnxRuntime.Gpu</c> package in place of <c>Microsoft.ML.OnnxRuntime</c>. Null: the CPU.</param>
    /// <param name="fallbackToCpu">When the CUDA provider cannot be used: score on the CPU and say why in
    /// <see cref="FallbackReason"/> (true), or throw <see cref="InvalidOperationException"/> (false, the default).</param>
    public RegNetOnnxSession(string modelPath, int intraOpThreads = 0, string? outputName = null, int? gpuDeviceId = null, bool fallbackToCpu = false)
        : this(ReadFile(modelPath), intraOpThreads, outputName, gpuDeviceId, fallbackToCpu) { }

    /// <summary>Opens an ONNX model held in memory (e.g. from <see cref="RegNetOnnxExporter.ExportToBytes"/>); the parameters
    /// are those of the file constructor.</summary>
    public RegNetOnnxSession(byte[] model, int intraOpThreads = 0, string? outputName = null, int? gpuDeviceId = null, bool fallbackToCpu = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (intraOpThreads < 0) throw new ArgumentOutOfRangeException(nameof(intraOpThreads), intraOpThreads, "intraOpThreads must be ≥ 0 (0 = ONNX Runtime's default).");
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = intraOpThreads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        if (gpuDeviceId is { } device) UseCuda(options, device, fallbackToCpu);
        try
        {
            _session = new InferenceSession(model, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"ONNX Runtime could not load the model: {e.Message} Export it again with RegNetOnnxExporter.", e);
        }
        if (_session.InputMetadata.Count != 1)
        {
            _session.Dispose();
            throw new InvalidDataException($"Expected a model with one image input; this one has {_session.InputMetadata.Count} inputs.");
        }
        var input = _session.InputMetadata.First();
        _inputName = input.Key;
        _inputDims = input.Value.Dimensions.Select(d => (long)d).ToArray();
        _outputName = outputName ?? _session.OutputMetadata.Keys.First();
        if (!_session.OutputMetadata.ContainsKey(_outputName))
        {
            _session.Dispose();
            throw new ArgumentException($"The model has no output '{outputName}'; its outputs are {string.Join(", ", _session.OutputMetadata.Keys)}.", nameof(outputName));
        }
        if (_session.OutputMetadata[_outputName].ElementDataType != TensorElementType.Float)
        {
            _session.Dispose();
            throw new ArgumentException($"Output '{_outputName}' is not float; choose the logits or probabilities output.", nameof(outputName));
        }
    }

    /// <summary>Where the session scores: <c>"CPU"</c> or <c>"CUDA:N"</c>.</summary>
    public string ExecutionProvider { get; private set; } = "CPU";

    /// <summary>Why a requested CUDA device is not used (with <c>fallbackToCpu</c>); null when nothing fell back.</summary>
    public string? FallbackReason { get; private set; }

    private void UseCuda(SessionOptions options, int device, bool fallbackToCpu)
    {
        if (device < 0) throw new ArgumentOutOfRangeException(nameof(device), device, "gpuDeviceId must be ≥ 0.");
        try
        {
            options.AppendExecutionProvider_CUDA(device);
            ExecutionProvider = $"CUDA:{device}";
        }
        catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
        {
            string reason = $"ONNX Runtime cannot use CUDA device {device} ({e.Message.Trim()}). The CUDA provider needs the " +
                            "Microsoft.ML.OnnxRuntime.Gpu package instead of Microsoft.ML.OnnxRuntime, a CUDA-capable GPU and its driver.";
            if (!fallbackToCpu) throw new InvalidOperationException(reason + " Pass fallbackToCpu: true to score on the CPU instead.", e);
            FallbackReason = reason + " Scoring on the CPU.";
        }
    }

    /// <summary>Name of the graph input.</summary>
    public string InputName => _inputName;

    /// <summary>Name of the output that <see cref="Score(float[], int)"/> returns.</summary>
    public string OutputName => _outputName;

    /// <summary>Scores <paramref name="n"/> images laid out N×3×S×S (S = the model's fixed input size).</summary>
    /// <returns>N×C values, row-major.</returns>
    public float[] Score(float[] batch, int n)
    {
        if (_inputDims[2] <= 0 || _inputDims[3] <= 0)
            throw new InvalidOperationException("The model's input size is dynamic; call Score(batch, n, height, width).");
        return Score(batch, n, (int)_inputDims[2], (int)_inputDims[3]);
    }

    /// <summary>Scores <paramref name="n"/> images laid out N×3×<paramref name="height"/>×<paramref name="width"/>.</summary>
    public float[] Score(float[] batch, int n, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "n must be ≥ 1.");
        long expected = (long)n * 3 * height * width;
        if (batch.Length < expected)
            throw new ArgumentException($"The batch holds {batch.Length} floats; {n} images of 3×{height}×{width} need {expected}.", nameof(batch));
        if (_inputDims[0] > 0 && _inputDims[0] != n)
            throw new ArgumentException($"The model was exported with a fixed batch size of {_inputDims[0]}; got {n} images.", nameof(n));
        var shape = new long[] { n, 3, height, width };
        // Pinned over the caller's array (no copy); only the first N×3×H×W floats are used.
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch.AsMemory(0, (int)expected), shape);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, new[] { _inputName }, new[] { input }, new[] { _outputName });
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>Releases the ONNX Runtime session; <see cref="Score(float[], int)"/> cannot be called afterwards.</summary>
    public void Dispose() => _session.Dispose();

    private static byte[] ReadFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"No ONNX file at '{Path.GetFullPath(path)}'.", path);
        return File.ReadAllBytes(path);
    }
}
