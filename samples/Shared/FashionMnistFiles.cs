// Shared by the samples and the Fashion-MNIST benchmark: reads Fashion-MNIST (MIT licence, Zalando Research) from the
// embedded subset or Debian's IDX files and writes 28×28 grayscale PNG files for ML.NET's image loaders.
using System.IO.Compression;
using SkiaSharp;

internal static class FashionMnistFiles
{
    public static readonly string[] ClassNames =
        { "T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" };

    private const int Side = 28;

    /// <summary>The subset file of samples/RegNetML.QuickStart/data (see make_subset.py): train images, then test images.</summary>
    public static (List<(int Label, byte[] Pixels)> Train, List<(int Label, byte[] Pixels)> Test) ReadSubset(string path)
    {
        using var reader = new BinaryReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
        if (new string(reader.ReadChars(4)) != "FMNS") throw new InvalidDataException($"{path} is not a Fashion-MNIST subset file.");
        int trainCount = reader.ReadInt32(), testCount = reader.ReadInt32();
        var all = Enumerable.Range(0, trainCount + testCount).Select(_ => ((int)reader.ReadByte(), reader.ReadBytes(Side * Side))).ToList();
        return (all.Take(trainCount).ToList(), all.Skip(trainCount).ToList());
    }

    /// <summary>An IDX image/label file pair as shipped in Debian's dataset-fashion-mnist (<c>train</c> or <c>t10k</c>).</summary>
    public static List<(int Label, byte[] Pixels)> ReadIdx(string folder, string kind)
    {
        using var images = new BinaryReader(new GZipStream(File.OpenRead(Path.Combine(folder, $"{kind}-images-idx3-ubyte.gz")), CompressionMode.Decompress));
        using var labels = new BinaryReader(new GZipStream(File.OpenRead(Path.Combine(folder, $"{kind}-labels-idx1-ubyte.gz")), CompressionMode.Decompress));
        images.ReadBytes(16);
        labels.ReadBytes(8);
        var result = new List<(int, byte[])>();
        for (byte[] pixels = images.ReadBytes(Side * Side); pixels.Length == Side * Side; pixels = images.ReadBytes(Side * Side))
            result.Add((labels.ReadByte(), pixels));
        return result;
    }

    /// <summary>Writes the subset as <c>train/&lt;class&gt;/NNNNN.png</c> and <c>test/…</c> under <paramref name="folder"/>;
    /// the rows name each file relative to the folder.</summary>
    public static (List<ImageRow> Train, List<ImageRow> Test) WriteImageFolders(string subset, string folder)
    {
        var (train, test) = ReadSubset(subset);
        List<ImageRow> Write(List<(int Label, byte[] Pixels)> images, string part) => images.Select((image, i) =>
        {
            string label = ClassNames[image.Label];
            string relative = Path.Combine(part, label, $"{i:D5}.png");
            WritePng(image.Pixels, Path.Combine(folder, relative));
            return new ImageRow { ImagePath = relative, Label = label };
        }).ToList();
        return (Write(train, "train"), Write(test, "test"));
    }

    /// <summary>Writes a 28×28 grayscale PNG unless the file exists already.</summary>
    public static void WritePng(byte[] pixels, string path)
    {
        if (File.Exists(path)) return;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bitmap = new SKBitmap(new SKImageInfo(Side, Side, SKColorType.Gray8));
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        using var file = File.Create(path);
        png.SaveTo(file);
    }
}

/// <summary>An image file and its class, as the samples load them.</summary>
public sealed class ImageRow
{
    public string ImagePath { get; set; } = "";
    public string Label { get; set; } = "";
}
