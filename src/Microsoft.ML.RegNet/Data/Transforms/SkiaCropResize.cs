using System.Runtime.InteropServices;
using SkiaSharp;

namespace Microsoft.ML.RegNet.Data.Transforms;

/// <summary>
/// Executes a <see cref="ResizePlan"/> with the resampler of the evaluation transform: SkiaSharp drawing the source
/// rectangle with <c>SKFilterQuality.High</c>, which is what ML.NET's <c>ResizeImages</c> (<c>IsoCrop</c>) does. Training
/// crops therefore see the same resampling as validation, scoring and the saved model (no train/test resize mismatch).
/// </summary>
internal static class SkiaCropResize
{
    /// <summary>Resamples <paramref name="plan"/>'s source rectangle of <paramref name="image"/> onto its grid and returns
    /// the plan's window, in <paramref name="output"/> when it has the output size.</summary>
    public static RgbImage Apply(RgbImage image, ResizePlan plan, RgbImage? output = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        var box = plan.Source;
        if (box.Width < 1 || box.Height < 1 || box.X < 0 || box.Y < 0 || box.X + box.Width > image.Width || box.Y + box.Height > image.Height)
            throw new ArgumentOutOfRangeException(nameof(plan), $"Crop {box} lies outside the {image.Width}×{image.Height} image.");
        output = output is { } o && o.Width == plan.OutputWidth && o.Height == plan.OutputHeight ? o : new RgbImage(plan.OutputWidth, plan.OutputHeight);
        using var source = ToBitmap(image);
        // As ML.NET's resizer: an opaque N32 target, the source rectangle drawn onto the resized grid (shifted by the window).
        using var target = new SKBitmap(plan.OutputWidth, plan.OutputHeight, isOpaque: true);
        using (var canvas = new SKCanvas(target))
        using (var paint = new SKPaint { FilterQuality = SKFilterQuality.High })
        {
            var from = new SKRect(box.X, box.Y, box.X + box.Width, box.Y + box.Height);
            var to = new SKRect(-plan.WindowX, -plan.WindowY, plan.ResizedWidth - plan.WindowX, plan.ResizedHeight - plan.WindowY);
            canvas.DrawBitmap(source, from, to, paint);
        }
        CopyToRgb(target, output);
        return output;
    }

    private static SKBitmap ToBitmap(RgbImage image)
    {
        var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        Span<uint> dst;
        unsafe { dst = new Span<uint>((void*)bitmap.GetPixels(), image.Width * image.Height); }
        ReadOnlySpan<byte> src = image.Pixels;
        for (int i = 0, s = 0; i < dst.Length; i++, s += 3)
            dst[i] = src[s] | (uint)src[s + 1] << 8 | (uint)src[s + 2] << 16 | 0xFF000000u;
        return bitmap;
    }

    private static void CopyToRgb(SKBitmap bitmap, RgbImage output)
    {
        var src = MemoryMarshal.Cast<byte, uint>(bitmap.GetPixelSpan());
        bool bgra = bitmap.ColorType == SKColorType.Bgra8888;
        if (!bgra && bitmap.ColorType != SKColorType.Rgba8888)
            throw new InvalidOperationException($"Unexpected Skia colour type {bitmap.ColorType}.");
        int r = bgra ? 16 : 0, b = bgra ? 0 : 16;
        Span<byte> dst = output.Pixels;
        for (int i = 0, d = 0; i < src.Length; i++, d += 3)
        {
            uint p = src[i];
            dst[d] = (byte)(p >> r);
            dst[d + 1] = (byte)(p >> 8);
            dst[d + 2] = (byte)(p >> b);
        }
    }
}
