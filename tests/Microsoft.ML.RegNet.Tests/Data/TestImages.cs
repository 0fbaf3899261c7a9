using Microsoft.ML.RegNet.Data.Transforms;
using SkiaSharp;

namespace Microsoft.ML.RegNet.Tests.Data;

/// <summary>Small synthetic images and fixture access shared by the augmentation tests.</summary>
internal static class TestImages
{
    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "augmentation", name);

    /// <summary>A deterministic colourful image (gradients plus a per-pixel hash).</summary>
    public static RgbImage Pattern(int width, int height, int salt = 0)
    {
        var img = new RgbImage(width, height);
        var p = img.Pixels;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = (y * width + x) * 3;
                p[i] = (byte)(x * 255 / Math.Max(1, width - 1));
                p[i + 1] = (byte)(y * 255 / Math.Max(1, height - 1));
                p[i + 2] = (byte)((x * 31 + y * 17 + salt * 7) & 255);
            }
        return img;
    }

    /// <summary>Encodes an RGB image with SkiaSharp (PNG or JPEG).</summary>
    public static byte[] Encode(RgbImage image, SKEncodedImageFormat format = SKEncodedImageFormat.Png, int quality = 95)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var px = image.Pixels;
        var dst = new byte[image.Width * image.Height * 4];
        for (int i = 0, j = 0; i < image.Width * image.Height; i++, j += 3)
        {
            dst[i * 4] = px[j];
            dst[i * 4 + 1] = px[j + 1];
            dst[i * 4 + 2] = px[j + 2];
            dst[i * 4 + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(dst, 0, bitmap.GetPixels(), dst.Length);
        using var data = bitmap.Encode(format, quality);
        return data.ToArray();
    }
}
