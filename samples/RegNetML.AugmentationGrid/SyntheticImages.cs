using SkiaSharp;

namespace RegNetML.AugmentationGrid;

/// <summary>Asymmetric synthetic photos (so crops, flips and colour shifts are visible) drawn with SkiaSharp.</summary>
internal static class SyntheticImages
{
    public static SKBitmap Draw(int width, int height, int seed)
    {
        var random = new Random(seed);
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using var canvas = new SKCanvas(bitmap);
        var sky = SKColor.FromHsv(random.Next(360), 40, 95);
        var ground = SKColor.FromHsv(random.Next(360), 60, 55);
        using (var paint = new SKPaint { Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(0, height), new[] { sky, ground }, SKShaderTileMode.Clamp) })
            canvas.DrawRect(0, 0, width, height, paint);
        for (int i = 0; i < 6; i++)
        {
            using var paint = new SKPaint { Color = SKColor.FromHsv(random.Next(360), 70 + random.Next(30), 60 + random.Next(40)), IsAntialias = true };
            float x = random.Next(width), y = random.Next(height), r = 15 + random.Next(Math.Min(width, height) / 5);
            if (i % 2 == 0) canvas.DrawCircle(x, y, r, paint);
            else canvas.DrawRect(x - r, y - r / 2, 2 * r, r, paint);
        }
        // A big "L"-shaped arrow pointing right in the left half: its direction shows horizontal flips.
        using (var arrow = new SKPaint { Color = SKColors.Black, IsAntialias = true, Style = SKPaintStyle.Fill })
        using (var path = new SKPath())
        {
            float u = Math.Min(width, height) / 10f;
            path.MoveTo(width * 0.1f, height * 0.3f);
            path.LineTo(width * 0.1f + 3 * u, height * 0.3f);
            path.LineTo(width * 0.1f + 3 * u, height * 0.3f - u);
            path.LineTo(width * 0.1f + 5 * u, height * 0.3f + u / 2);
            path.LineTo(width * 0.1f + 3 * u, height * 0.3f + 2 * u);
            path.LineTo(width * 0.1f + 3 * u, height * 0.3f + u);
            path.LineTo(width * 0.1f + u, height * 0.3f + u);
            path.LineTo(width * 0.1f + u, height * 0.3f + 4 * u);
            path.LineTo(width * 0.1f, height * 0.3f + 4 * u);
            path.Close();
            canvas.DrawPath(path, arrow);
        }
        // Checkerboard in the bottom-right corner: shows scale and resampling.
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++)
            {
                using var paint = new SKPaint { Color = (x + y) % 2 == 0 ? SKColors.White : SKColors.DarkSlateGray };
                float s = Math.Min(width, height) / 24f;
                canvas.DrawRect(width - 8 * s - 10 + x * s, height - 8 * s - 10 + y * s, s, s, paint);
            }
        return bitmap;
    }

    public static byte[] Jpeg(int width, int height, int seed, int quality = 90)
    {
        using var bitmap = Draw(width, height, seed);
        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, quality);
        return data.ToArray();
    }
}
