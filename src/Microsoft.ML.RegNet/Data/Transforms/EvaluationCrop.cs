namespace Microsoft.ML.RegNet.Data.Transforms;

/// <summary>
/// The evaluation transform of pycls and the seed trainer: resize the shorter side to
/// <c>round(Size / CropFraction)</c> (256 for 224 at 0.875) keeping the aspect ratio, the longer side truncated
/// (<c>floor(long·S/short)</c>, computed exactly in integers), then take the centred <c>Size×Size</c> window with
/// <b>ceil</b> offsets <c>ceil((W'−Size)/2)</c>, <c>ceil((H'−Size)/2)</c>. (torchvision's <c>CenterCrop</c> rounds the offset
/// half-to-even instead, which differs by one pixel when the margin is odd.) Deterministic; also the fallback of
/// <see cref="InceptionCrop"/>.
/// </summary>
public sealed class EvaluationCrop
{
    /// <summary>Defines the transform.</summary>
    /// <param name="size">Output side in pixels.</param>
    /// <param name="cropFraction">Size / shorter side before the crop, in (0, 1].</param>
    public EvaluationCrop(int size, double cropFraction = 0.875)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "The crop size must be positive.");
        if (!(cropFraction > 0 && cropFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(cropFraction), cropFraction, "The crop fraction must be in (0, 1].");
        Size = size;
        CropFraction = cropFraction;
        ResizeShorterSide = Math.Max(size, (int)Math.Round(size / cropFraction));
    }

    /// <summary>Defines the transform from a weights' preprocessing (size and crop fraction).</summary>
    public EvaluationCrop(PreprocessingSpec spec) : this(spec.ImageSize, spec.CropFraction) { }

    /// <summary>Output side.</summary>
    public int Size { get; }

    /// <summary>Crop fraction.</summary>
    public double CropFraction { get; }

    /// <summary>The shorter side after the resize.</summary>
    public int ResizeShorterSide { get; }

    /// <summary>The geometry for an image of the given size.</summary>
    public ResizePlan Plan(int width, int height)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"Image size must be positive (got {width}×{height}).");
        int s = ResizeShorterSide;
        int rw, rh;
        if (width < height)
        {
            rw = s;
            rh = (int)((long)height * s / width);
        }
        else
        {
            rh = s;
            rw = (int)((long)width * s / height);
        }
        int x = (rw - Size + 1) / 2, y = (rh - Size + 1) / 2; // ceil of half the margin
        return new ResizePlan(new CropBox(0, 0, width, height), rw, rh, x, y, Size, Size);
    }

    /// <summary>Applies the transform.</summary>
    public RgbImage Apply(RgbImage image) => BilinearResize.Apply(image, Plan(image.Width, image.Height));
}
