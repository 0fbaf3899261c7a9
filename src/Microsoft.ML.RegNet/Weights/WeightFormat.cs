namespace Microsoft.ML.RegNet;

/// <summary>Weight file formats this library reads.</summary>
public enum WeightFormat
{
    /// <summary>Keras 2 HDF5 (<c>.h5</c>): weights-only or full-model, with or without the top.</summary>
    KerasHdf5,
    /// <summary><c>torch.save</c> checkpoint (<c>.pth</c>, <c>.pt</c>, <c>.pyth</c>, <c>.bin</c>), zip or legacy format; read with a restricted unpickler.</summary>
    PyTorch,
    /// <summary>Plain safetensors (timm, torchvision or pycls names).</summary>
    Safetensors,
    /// <summary>This library's own format: safetensors in timm layout with <c>regnetml.*</c> metadata (architecture, classes, preprocessing).</summary>
    RegNetML,
    /// <summary>An ML.NET model zip (<c>mlContext.Model.Save</c>) of a pipeline with a RegNet: the weights come from its embedded ONNX export.</summary>
    MLNetModel,
    /// <summary>A checkpoint of this library's trainer (<c>.ckpt</c>, written under a run folder's checkpoints/): verified
    /// with its SHA-256, then its model weights are read; the optimizer state and training position are not used.</summary>
    RegNetCheckpoint,
}
