using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet;

/// <summary>
/// Per-image augmentation settings (the pipeline of the Keras RegNets' trainer: inception crop, flip, PCA lighting). With
/// <see cref="Train"/> false only the deterministic <see cref="EvaluationCrop"/> runs and the random settings are ignored.
/// Training order: inception crop → horizontal flip → PCA lighting (folded into normalisation).
/// </summary>
public sealed record AugmentationOptions
{
    /// <summary>Training (random crop, flip, lighting) or evaluation (resize + centre crop).</summary>
    public bool Train { get; init; } = true;

    /// <summary>Smallest crop area fraction, in (0, 1]: 0.08 standard, 0.16 for Keras Y002–Y008, 0.25 for X002.</summary>
    public double AreaFactor { get; init; } = 0.08;

    /// <summary>Aspect-ratio draw: uniform (seed, pycls) or log-uniform (torchvision, timm).</summary>
    public AspectRatioSampling AspectSampling { get; init; } = AspectRatioSampling.Uniform;

    /// <summary>Smallest aspect ratio (3/4).</summary>
    public double MinAspectRatio { get; init; } = 3.0 / 4.0;

    /// <summary>Largest aspect ratio (4/3).</summary>
    public double MaxAspectRatio { get; init; } = 4.0 / 3.0;

    /// <summary>Crop draws before falling back to the evaluation crop (10).</summary>
    public int CropAttempts { get; init; } = 10;

    /// <summary>Horizontal flip probability (0.5); 0 disables.</summary>
    public double FlipProbability { get; init; } = 0.5;

    /// <summary>PCA lighting α standard deviation (0.1); 0 disables.</summary>
    public double LightingStd { get; init; } = 0.1;

    /// <summary>Evaluation (and crop fallback) fraction: the shorter side is resized to <c>size / CropFraction</c> (0.875 → 256 for 224).</summary>
    public double CropFraction { get; init; } = 0.875;

    /// <summary>The training settings of the Keras RegNets' trainer with the given area factor.</summary>
    public static AugmentationOptions Training(double areaFactor = 0.08) => new() { AreaFactor = areaFactor };

    /// <summary>Evaluation: resize the shorter side to <c>size/cropFraction</c> and centre-crop.</summary>
    public static AugmentationOptions Evaluation(double cropFraction = 0.875) => new() { Train = false, CropFraction = cropFraction };

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (!(CropFraction > 0 && CropFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(CropFraction), CropFraction, "The crop fraction must be in (0, 1].");
        if (!Train) return;
        if (!(AreaFactor > 0 && AreaFactor <= 1))
            throw new ArgumentOutOfRangeException(nameof(AreaFactor), AreaFactor, "The area factor (smallest area fraction) must be in (0, 1].");
        if (!(MinAspectRatio > 0 && MinAspectRatio <= MaxAspectRatio && double.IsFinite(MaxAspectRatio)))
            throw new ArgumentOutOfRangeException(nameof(MinAspectRatio), $"Aspect bounds must satisfy 0 < min ≤ max (got {MinAspectRatio}, {MaxAspectRatio}).");
        if (CropAttempts < 1)
            throw new ArgumentOutOfRangeException(nameof(CropAttempts), CropAttempts, "At least one crop attempt is needed.");
        if (!(FlipProbability >= 0 && FlipProbability <= 1))
            throw new ArgumentOutOfRangeException(nameof(FlipProbability), FlipProbability, "The flip probability must be in [0, 1].");
        if (!(LightingStd >= 0 && double.IsFinite(LightingStd)))
            throw new ArgumentOutOfRangeException(nameof(LightingStd), LightingStd, "The lighting standard deviation must be finite and ≥ 0.");
    }
}
