namespace Microsoft.ML.RegNet.Weights.Layouts;

/// <summary>Kind of a weight-holding layer, which fixes the tensors it owns.</summary>
internal enum LayerKind
{
    /// <summary>Convolution without bias: <c>weight</c>.</summary>
    Conv,
    /// <summary>Convolution with bias (SE): <c>weight</c>, <c>bias</c>.</summary>
    ConvWithBias,
    /// <summary>BatchNorm: <c>weight</c>, <c>bias</c>, <c>running_mean</c>, <c>running_var</c>, <c>num_batches_tracked</c>.</summary>
    BatchNorm,
    /// <summary>Linear: <c>weight</c>, <c>bias</c>.</summary>
    Linear,
}
