namespace Microsoft.ML.RegNet.Onnx;

/// <summary>A module that writes its own forward pass as ONNX nodes, next to the TorchSharp forward it mirrors.</summary>
internal interface IOnnxExportable
{
    /// <summary>Appends this module's nodes to <paramref name="graph"/>.</summary>
    /// <param name="graph">The graph being built; its initializers are the model's weights under their state-dict names.</param>
    /// <param name="prefix">This module's state-dict prefix (<c>s1.b1.conv1</c>; empty for the root), which names its
    /// nodes and weights.</param>
    /// <param name="input">The value fed to the module.</param>
    /// <returns>The module's output.</returns>
    OnnxValue Export(OnnxGraphWriter graph, string prefix, OnnxValue input);
}

/// <summary>A value in the graph being built, with its spatial side when the export fixes it (TF-"same" pads need it).</summary>
/// <param name="Name">The ONNX value name.</param>
/// <param name="Size">Height = width in pixels, or null when the graph takes any size.</param>
internal readonly record struct OnnxValue(string Name, int? Size);
