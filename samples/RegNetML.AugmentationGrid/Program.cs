// A PNG grid of what the augmentation does, made with the public API only: mlContext.Data.RandomResizedCrop /
// RandomHorizontalFlip / RandomPcaLighting (augmented data) and mlContext.Transforms.EvaluationCrop.
// Usage:
//   dotnet run -c Release --project samples/RegNetML.AugmentationGrid -- [--out grid.png] [--seed N] [image files...]
// (The input pipeline benchmark that used to live here is `benchmarks/RegNetML.Benchmarks -- --input-pipeline`.)
using Microsoft.ML;
using Microsoft.ML.Data;
using RegNetML.AugmentationGrid;
using SkiaSharp;

var arguments = args.ToList();
string? Option(string name, string? fallback = null)
{
    int i = arguments.IndexOf(name);
    if (i < 0) return fallback;
    string value = arguments[i + 1];
    arguments.RemoveRange(i, 2);
    return value;
}

string output = Option("--out", "augmentation-grid.png")!;
int seed = int.Parse(Option("--seed", "0")!);
const int cell = 224, columns = 8, gap = 4;
var files = arguments.Select(Path.GetFullPath).ToList();
if (files.Count == 0)
{
    string folder = Path.Combine(Path.GetTempPath(), "regnetml-augmentation-grid");
    Directory.CreateDirectory(folder);
    for (int i = 0; i < 3; i++)
    {
        string path = Path.Combine(folder, $"synthetic-{i}.jpg");
        File.WriteAllBytes(path, SyntheticImages.Jpeg(500, 375, 10 + i));
        files.Add(path);
    }
}

// Column 0: the whole image letterboxed; column 1: the evaluation crop; then training augmentations
// (inception crop with area factor 0.08 → flip → PCA lighting at 10× the usual std, so it is visible).
// The random operations are data: every pass over `augmented` draws new crops, flips and lighting.
var ml = new MLContext(seed);
var rows = ml.Data.LoadFromEnumerable(files.Select(f => new ImageFile { Path = f }));
var images = ml.Transforms.LoadImages("Image", imageFolder: "", inputColumnName: nameof(ImageFile.Path)).Fit(rows).Transform(rows);
var evaluation = ml.Transforms.EvaluationCrop("Evaluation", "Image", imageSize: cell).Fit(images).Transform(images);
var augmented = ml.Data.RandomResizedCrop(images, "Augmented", "Image", imageSize: cell, areaFactor: 0.08);
augmented = ml.Data.RandomHorizontalFlip(augmented, "Augmented");
augmented = ml.Data.RandomPcaLighting(augmented, "Augmented", std: 1.0);

using var grid = new SKBitmap(new SKImageInfo(columns * (cell + gap) + gap, files.Count * (cell + gap) + gap, SKColorType.Rgba8888, SKAlphaType.Opaque));
using (var canvas = new SKCanvas(grid))
{
    canvas.Clear(SKColors.White);
    for (int r = 0; r < files.Count; r++)
    {
        using var whole = SKBitmap.Decode(files[r]) ?? throw new InvalidDataException($"Cannot decode {files[r]}.");
        float scale = Math.Min((float)cell / whole.Width, (float)cell / whole.Height);
        float w = whole.Width * scale, h = whole.Height * scale, top = gap + r * (cell + gap) + (cell - h) / 2;
        canvas.DrawBitmap(whole, SKRect.Create(gap, top, w, h));
    }
    DrawColumn(canvas, evaluation.GetColumn<MLImage>("Evaluation"), 1);
    for (int c = 2; c < columns; c++)
        DrawColumn(canvas, augmented.GetColumn<MLImage>("Augmented"), c);
}
using (var data = grid.Encode(SKEncodedImageFormat.Png, 100))
using (var file = File.Create(output))
    data.SaveTo(file);
Console.WriteLine($"Wrote {output}: {files.Count} rows × {columns} columns (original, evaluation crop, {columns - 2} training augmentations).");

static void DrawColumn(SKCanvas canvas, IEnumerable<MLImage> images, int column)
{
    int row = 0;
    foreach (var image in images)
        using (image)
        {
            var colorType = image.PixelFormat == MLPixelFormat.Bgra32 ? SKColorType.Bgra8888 : SKColorType.Rgba8888;
            using var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, colorType, SKAlphaType.Opaque));
            var pixels = image.Pixels.ToArray();
            System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
            canvas.DrawBitmap(bitmap, gap + column * (cell + gap), gap + row * (cell + gap));
            row++;
        }
}

internal sealed class ImageFile
{
    public string Path { get; set; } = "";
}
