using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.ML.Data;
using SkiaSharp;

namespace Microsoft.ML.RegNet.Data.Transforms;

/// <summary>
/// Decodes encoded images (JPEG, PNG, WebP, GIF, BMP… whatever SkiaSharp reads) to <see cref="RgbImage"/>.
/// Grayscale, palette and CMYK/YCCK images are converted to RGB by the codec. Transparent pixels are composed over
/// black (each colour channel × alpha / 255, rounded), exactly as ML.NET's <c>LoadImages</c> does (its <c>MLImage</c> holds
/// premultiplied pixels), so a data set trains the same whether it is loaded with <c>LoadImages</c> or
/// <c>LoadRawImageBytes</c>. PIL's <c>convert("RGB")</c> differs: it keeps the colour under a transparent pixel.
/// EXIF orientation is not applied (neither PIL nor OpenCV's pycls loader applies it by default).
/// </summary>
internal static class ImageDecoder
{
    /// <summary>Decodes <paramref name="encoded"/>; failures throw <see cref="InvalidDataException"/> naming <paramref name="source"/>.</summary>
    /// <param name="encoded">The file bytes.</param>
    /// <param name="source">What to call the image in error messages (a path, "row 17", …).</param>
    public static RgbImage Decode(ReadOnlySpan<byte> encoded, string? source = null)
    {
        byte[]? buffer = null;
        return Decode(encoded, source, ref buffer);
    }

    /// <summary>
    /// Decodes into a reusable pixel buffer: <paramref name="buffer"/> is used when large enough and replaced by a larger
    /// one otherwise, so a worker decoding many images allocates only when it meets a bigger one. The returned image
    /// wraps the buffer, so it is valid until the next call with the same buffer.
    /// </summary>
    public static RgbImage Decode(ReadOnlySpan<byte> encoded, string? source, ref byte[]? buffer) =>
        TryDecode(encoded, ref buffer, out string? problem) ?? throw new InvalidDataException($"{source ?? "image"}: {problem}");

    /// <summary>Like <see cref="Decode(ReadOnlySpan{byte}, string?, ref byte[])"/>, but a file that is not a decodable image
    /// gives null and what is wrong with it (the input pipeline reports it per row instead of throwing).</summary>
    internal static RgbImage? TryDecode(ReadOnlySpan<byte> encoded, ref byte[]? buffer, out string? problem)
    {
        problem = null;
        if (encoded.IsEmpty)
        {
            problem = "the image is empty (0 bytes).";
            return null;
        }
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data);
        if (codec is null)
        {
            problem = $"not a decodable image ({encoded.Length} bytes; unknown format or corrupt header).";
            return null;
        }
        int width = codec.Info.Width, height = codec.Info.Height;
        if (width <= 0 || height <= 0)
        {
            problem = $"the image has no pixels ({width}×{height}).";
            return null;
        }
        // Premultiplied, as SKBitmap.Decode (and so MLImage) decodes: dropping alpha then leaves the pixel composed over black.
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        int rgbaLength = checked(width * height * 4);
        byte[] rgba = ArrayPool<byte>.Shared.Rent(rgbaLength);
        try
        {
            SKCodecResult result;
            unsafe
            {
                fixed (byte* p = rgba)
                    result = codec.GetPixels(info, (IntPtr)p);
            }
            if (result != SKCodecResult.Success)
            {
                problem = $"decoding failed ({result}; the file is truncated or corrupt).";
                return null;
            }
            int rgbLength = checked(width * height * 3);
            if (buffer is null || buffer.Length < rgbLength) buffer = new byte[rgbLength];
            var image = new RgbImage(width, height, buffer);
            RgbaToRgb(rgba.AsSpan(0, rgbaLength), image.Pixels, swapRedBlue: false);
            return image;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rgba);
        }
    }

    /// <summary>Reads and decodes a file; errors name the path.</summary>
    public static RgbImage DecodeFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"{path}: cannot read the file ({e.Message}).", e);
        }
        return Decode(bytes, path);
    }

    /// <summary>Copies an ML.NET image (BGRA or RGBA, 4 bytes per pixel) to RGB, dropping alpha. Images from
    /// <c>LoadImages</c> are premultiplied, so transparent pixels come out composed over black, as <see cref="Decode(ReadOnlySpan{byte}, string?)"/> does.</summary>
    public static RgbImage FromMLImage(MLImage image, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        return TryFromMLImage(image, out string? problem) ?? throw new InvalidDataException($"{source ?? "image"}: {problem}");
    }

    /// <summary>Like <see cref="FromMLImage"/>, but an unusable image gives null and what is wrong with it.</summary>
    internal static RgbImage? TryFromMLImage(MLImage image, out string? problem)
    {
        problem = null;
        if (image.Width <= 0 || image.Height <= 0)
            problem = $"the image has no pixels ({image.Width}×{image.Height}).";
        else if (image.PixelFormat is not (MLPixelFormat.Bgra32 or MLPixelFormat.Rgba32))
            problem = $"unsupported pixel format {image.PixelFormat}.";
        if (problem is not null) return null;
        var rgb = new RgbImage(image.Width, image.Height);
        RgbaToRgb(image.Pixels, rgb.Pixels, swapRedBlue: image.PixelFormat == MLPixelFormat.Bgra32);
        return rgb;
    }

    /// <summary>Makes an ML.NET image (RGBA, opaque) from an RGB image.</summary>
    public static MLImage ToMLImage(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        int n = image.Width * image.Height;
        byte[] rgba = ArrayPool<byte>.Shared.Rent(n * 4);
        try
        {
            ReadOnlySpan<byte> src = image.Pixels;
            Span<byte> dst = rgba.AsSpan(0, n * 4);
            for (int i = 0, s = 0, d = 0; i < n; i++, s += 3, d += 4)
            {
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
                dst[d + 3] = 255;
            }
            return MLImage.CreateFromPixels(image.Width, image.Height, MLPixelFormat.Rgba32, dst);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rgba);
        }
    }

    private static void RgbaToRgb(ReadOnlySpan<byte> src, Span<byte> dst, bool swapRedBlue)
    {
        int n = dst.Length / 3;
        if (src.Length < n * 4) throw new InvalidDataException($"Pixel buffer too short ({src.Length} bytes for {n} pixels).");
        // Reading whole pixels as uints keeps this loop simple and fast on little-endian machines.
        ReadOnlySpan<uint> px = MemoryMarshal.Cast<byte, uint>(src[..(n * 4)]);
        int r = swapRedBlue ? 16 : 0, b = swapRedBlue ? 0 : 16;
        for (int i = 0, d = 0; i < n; i++, d += 3)
        {
            uint p = px[i];
            dst[d] = (byte)(p >> r);
            dst[d + 1] = (byte)(p >> 8);
            dst[d + 2] = (byte)(p >> b);
        }
    }
}
