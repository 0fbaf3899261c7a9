using SkiaSharp;

namespace RegNetML.Tool.Tests;

/// <summary>Small learnable image folders on disk: class "red" images are reddish, "blue" bluish, with noise.</summary>
internal sealed class ToolImages : IDisposable
{
    public ToolImages() => Root = Directory.CreateTempSubdirectory("regnet-tool-").FullName;

    public string Root { get; }

    /// <summary>A tiny RegNet (four stages of one block, widths 8–64) as a --spec file: a training step takes milliseconds.</summary>
    public string TinySpec()
    {
        string path = Path.Combine(Root, "tiny.json");
        File.WriteAllText(path, """{"name": "tiny", "depth": 4, "w0": 8, "wa": 8, "wm": 2, "group_width": 8, "bottleneck_ratio": 1, "se_ratio": 0, "rounding": "nearest"}""");
        return path;
    }

    /// <summary>Writes <c>name/&lt;class&gt;/NNN.png</c> for each class and returns the folder.</summary>
    public string Folder(string name, int perClass, string[]? classes = null, int size = 36, int seed = 1)
    {
        classes ??= new[] { "blue", "red" };
        string folder = Path.Combine(Root, name);
        var random = new Random(seed);
        for (int c = 0; c < classes.Length; c++)
            for (int i = 0; i < perClass; i++)
                WritePng(Path.Combine(folder, classes[c], $"{i:D3}.png"), size, random, c);
        return folder;
    }

    public static void WritePng(string path, int size, Random random, int colour, SKColorType type = SKColorType.Rgba8888, SKAlphaType alpha = SKAlphaType.Opaque)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bitmap = new SKBitmap(new SKImageInfo(size, size, type, alpha));
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                byte main = (byte)Math.Clamp(180 + random.Next(-60, 60), 0, 255), other = (byte)Math.Clamp(60 + random.Next(-60, 60), 0, 255);
                bitmap.SetPixel(x, y, colour switch { 0 => new SKColor(other, other, main), 1 => new SKColor(main, other, other), _ => new SKColor(other, main, other) });
            }
        using var data = bitmap.Encode(path.EndsWith(".jpg") ? SKEncodedImageFormat.Jpeg : SKEncodedImageFormat.Png, 90);
        using var file = File.Create(path);
        data.SaveTo(file);
    }

    /// <summary>The options every training test uses: the tiny spec, 32 px, small batches, one thread, runs under this folder.</summary>
    public string[] TrainArgs(string data, int epochs, params string[] more) =>
        new[] { "train", data, "--spec", TinySpec(), "--image-size", "32", "--batch-size", "4", "--epochs", epochs.ToString(),
            "--threads", "1", "--workspace", Path.Combine(Root, "ws"), "--seed", "1" }.Concat(more).ToArray();

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
