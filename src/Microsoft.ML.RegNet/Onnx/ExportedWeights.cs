using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Onnx;

/// <summary>A model's state dict copied to host arrays for export; the BN counters apart, as they go to the metadata.</summary>
internal sealed record ExportedWeights(Dictionary<string, (float[] Data, long[] Shape)> Tensors, Dictionary<string, long> Counters)
{
    /// <summary>Reads every tensor, refusing a disposed, non-float32 or non-finite model with a message that says what to do.</summary>
    public static ExportedWeights Read(RegNetModel model)
    {
        var tensors = new Dictionary<string, (float[], long[])>(StringComparer.Ordinal);
        var counters = new Dictionary<string, long>(StringComparer.Ordinal);
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            foreach (var (name, tensor) in CanonicalState(model))
            {
                if (tensor is null || tensor.IsInvalid)
                    throw new InvalidOperationException($"The RegNetModel has no usable weights: '{name}' was disposed. Export a live model (load or train its weights first; do not dispose it or its parameters).");
                var cpu = tensor.detach().cpu();
                if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal))
                {
                    counters[name] = cpu.item<long>();
                    continue;
                }
                tensors[name] = (ToFloats(name, cpu), cpu.shape.ToArray());
            }
        }
        catch (ObjectDisposedException e)
        {
            throw new InvalidOperationException("The RegNetModel has no usable weights (it was disposed). Export a live model.", e);
        }
        if (tensors.Count == 0)
            throw new InvalidOperationException("The RegNetModel has no usable weights (its state dict is empty; was it disposed?). Export a live model.");
        return new ExportedWeights(tensors, counters);
    }

    /// <summary>
    /// The state dict under its timm-style names. TorchSharp also lists every submodule held in a field under the field's
    /// name (<c>stem._conv.weight</c> next to <c>stem.conv.weight</c>, the same tensor); those aliases are skipped.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> CanonicalState(RegNetModel model) =>
        model.state_dict().Where(kv => !kv.Key.Split('.').Any(part => part.StartsWith('_')));

    private static float[] ToFloats(string name, Tensor cpu)
    {
        if (cpu.dtype != ScalarType.Float32)
            throw new InvalidOperationException($"Weight '{name}' is {cpu.dtype}; the ONNX exporter writes float32 models. Convert the model with model.to(torch.float32) first.");
        // Tensor.bytes views the storage (one copy); TensorAccessor.ToArray copies element by element through an
        // iterator, which took 80-130 ms of a RegNetX-002 export.
        var data = MemoryMarshal.Cast<byte, float>(cpu.contiguous().bytes).ToArray();
        int bad = IndexOfNonFinite(data);
        if (bad >= 0)
            throw new InvalidOperationException($"The RegNetModel's weight '{name}' holds a non-finite value ({data[bad]}) at index {bad}; the model cannot be exported (check the training run, e.g. for a diverged loss).");
        return data;
    }

    private static int IndexOfNonFinite(float[] data)
    {
        for (int i = 0; i < data.Length; i++)
            if (!float.IsFinite(data[i])) return i;
        return -1;
    }
}
