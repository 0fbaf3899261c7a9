namespace Microsoft.ML.RegNet;

/// <summary>What "weight decay" means; the three readings give very different results for the same coefficient.</summary>
public enum WeightDecaySemantics
{
    /// <summary>PyTorch AdamW: p ← p − lr·wd·p before the update (decay follows the schedule).</summary>
    Decoupled,
    /// <summary>TensorFlow Addons AdamW, what the Keras RegNets used: p ← p − wd·p every step, not scaled by the learning rate.</summary>
    DecoupledConstant,
    /// <summary>Classic L2: wd·p added to the gradient (pycls SGD).</summary>
    CoupledL2,
}
