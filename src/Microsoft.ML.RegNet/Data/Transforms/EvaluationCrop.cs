using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.MLNet;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.RegNet.Data.Transforms;

/// <summary>
/// The one evaluation transform, used by validation during training, by <c>RegNetTransformer</c> scoring, by the ONNX
/// export and by the saved ML.NET model alike: ML.NET's own <c>ResizeImages</c> (<c>IsoCrop</c>, centre anchor) scales the
/// image so its shorter side is <see cref="ResizeShorterSide"/> (<c>round(Size / CropFraction)</c>: 256 for 224 at 0.875)
/// and keeps the centred square, then the centred <c>Size×Size</c> window at offset <see cref="WindowOffset"/>
/// (<c>ceil((R − Size) / 2)</c>) is taken.
/// </summary>
/// <remarks>
/// A saved ML.NET model can only resize with ML.NET's resizer (its pixel extractor needs images of a known size), so the
/// resampling is ML.NET's (SkiaSharp, high quality), executed here by ML.NET's own transformer: in-process scores and
/// saved-model scores see the same pixels by construction. This is not PIL's resampling, so pixels differ slightly from a
/// Python pipeline's. Training crops (<see cref="InceptionCrop"/>) resample with the same SkiaSharp filter.
/// </remarks>
internal sealed class EvaluationCrop
{
    private readonly ThreadLocal<MLNetImageResizer> _resizer;

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
        ResizeShorterSide = PreprocessingSpec.ShorterSideFor(size, cropFraction);
        WindowOffset = WindowOffsetFor(ResizeShorterSide, size);
        _resizer = new ThreadLocal<MLNetImageResizer>(() => new MLNetImageResizer(ResizeShorterSide));
    }

    /// <summary>Defines the transform from a weights' preprocessing (size and crop fraction).</summary>
    public EvaluationCrop(PreprocessingSpec spec) : this(spec.ImageSize, spec.CropFraction) { }

    /// <summary>Output side.</summary>
    public int Size { get; }

    /// <summary>Crop fraction.</summary>
    public double CropFraction { get; }

    /// <summary>The side of the square ML.NET's resizer produces (the shorter side after the resize).</summary>
    public int ResizeShorterSide { get; }

    /// <summary>Left and top offset of the <see cref="Size"/>² window in the resized square.</summary>
    public int WindowOffset { get; }

    /// <summary>The one rounding of the centred window's offset: <c>ceil((resized − size) / 2)</c>.</summary>
    public static int WindowOffsetFor(int resized, int size) => (resized - size + 1) / 2;

    /// <summary>
    /// The geometry of a centred crop of an image of the given size, for a resampler of the caller's choice (the
    /// <see cref="InceptionCrop"/> fallback): whole image to a shorter side of <see cref="ResizeShorterSide"/>, centred window.
    /// </summary>
    public ResizePlan Plan(int width, int height)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"Image size must be positive (got {width}×{height}).");
        int s = ResizeShorterSide;
        int rw = width < height ? s : (int)((long)width * s / height);
        int rh = width < height ? (int)((long)height * s / width) : s;
        return new ResizePlan(new CropBox(0, 0, width, height), rw, rh, WindowOffsetFor(rw, Size), WindowOffsetFor(rh, Size), Size, Size);
    }

    /// <summary>ML.NET's resize step, as the estimator a saved model contains.</summary>
    public ImageResizingEstimator CreateResizeEstimator(MLContext mlContext, string outputColumnName, string inputColumnName) =>
        mlContext.Transforms.ResizeImages(outputColumnName, ResizeShorterSide, ResizeShorterSide, inputColumnName,
            ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center);

    /// <summary>The resize step on one image (by ML.NET's resizer); the caller disposes the result unless it is <paramref name="image"/> itself.</summary>
    public MLImage Resize(MLImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return _resizer.Value!.Resize(image);
    }

    /// <summary>Applies the whole transform to an ML.NET image.</summary>
    public RgbImage Apply(MLImage image)
    {
        var resized = Resize(image);
        try
        {
            return Window(ImageDecoder.FromMLImage(resized));
        }
        finally
        {
            if (!ReferenceEquals(resized, image)) resized.Dispose();
        }
    }

    /// <summary>
    /// Applies the whole transform to decoded pixels (resized through an opaque ML.NET image; an image already of
    /// <see cref="ResizeShorterSide"/>² is only windowed, as ML.NET's resizer leaves it unchanged).
    /// </summary>
    public RgbImage Apply(RgbImage image, RgbImage? output = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Width == ResizeShorterSide && image.Height == ResizeShorterSide) return Window(image, output);
        using var ml = ImageDecoder.ToMLImage(image);
        var resized = Resize(ml);
        try
        {
            return Window(ImageDecoder.FromMLImage(resized), output);
        }
        finally
        {
            if (!ReferenceEquals(resized, ml)) resized.Dispose();
        }
    }

    /// <summary>The <see cref="Size"/>² window of an already resized <see cref="ResizeShorterSide"/>² image.</summary>
    public RgbImage Window(RgbImage resized, RgbImage? output = null)
    {
        ArgumentNullException.ThrowIfNull(resized);
        if (resized.Width != ResizeShorterSide || resized.Height != ResizeShorterSide)
            throw new ArgumentException(
                $"The evaluation window needs a {ResizeShorterSide}×{ResizeShorterSide} image (after the resize step); got {resized.Width}×{resized.Height}.", nameof(resized));
        output ??= new RgbImage(Size, Size);
        int rowBytes = Size * 3, srcStride = ResizeShorterSide * 3;
        ReadOnlySpan<byte> src = resized.Pixels;
        Span<byte> dst = output.Pixels;
        for (int y = 0; y < Size; y++)
            src.Slice((y + WindowOffset) * srcStride + WindowOffset * 3, rowBytes).CopyTo(dst.Slice(y * rowBytes, rowBytes));
        return output;
    }
}
