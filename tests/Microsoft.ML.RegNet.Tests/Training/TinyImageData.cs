using Microsoft.ML.RegNet.Training;
using SkiaSharp;

namespace Microsoft.ML.RegNet.Tests.Training;

/// <summary>A small learnable image set on disk: class "red" images are reddish, "blue" bluish, with noise.</summary>
internal sealed class TinyImageData : IDisposable
{
    public sealed class Row
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public TinyImageData(int perClass, int size = 40, int seed = 1, string[]? classes = null)
    {
        Folder = Directory.CreateTempSubdirectory("regnet-tiny-").FullName;
        classes ??= new[] { "red", "blue" };
        var random = new Random(seed);
        var rows = new List<Row>();
        for (int i = 0; i < perClass; i++)
            for (int c = 0; c < classes.Length; c++)
            {
                using var bitmap = new SKBitmap(size, size);
                for (int y = 0; y < size; y++)
                    for (int x = 0; x < size; x++)
                    {
                        int noise = random.Next(-60, 60);
                        byte main = (byte)Math.Clamp(180 + noise, 0, 255), other = (byte)Math.Clamp(60 + random.Next(-60, 60), 0, 255);
                        bitmap.SetPixel(x, y, c switch { 0 => new SKColor(main, other, other), 1 => new SKColor(other, other, main), _ => new SKColor(other, main, other) });
                    }
                string path = Path.Combine(Folder, $"{classes[c]}_{i}.png");
                using (var data = bitmap.Encode(SKEncodedImageFormat.Png, 100))
                using (var file = File.Create(path)) data.SaveTo(file);
                rows.Add(new Row { ImagePath = path, Label = classes[c] });
            }
        Rows = rows;
    }

    public string Folder { get; }
    public IReadOnlyList<Row> Rows { get; }

    /// <summary>The tiny RegNet the training tests train on these images.</summary>
    public static RegNetSpec TinySpec { get; } = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8, name: "tiny");

    /// <summary>Fits the trainer on these rows: the label to a key, the image loaded from its path. <paramref name="log"/>
    /// receives ML.NET's log messages.</summary>
    public RegNetTransformer Fit(RegNetTrainer.Options options, Action<string>? log = null)
    {
        var ml = new MLContext(seed: 1);
        if (log is not null) ml.Log += (_, e) => log(e.Message);
        var view = ml.Data.LoadFromEnumerable(Rows);
        var prepared = ml.Transforms.Conversion.MapValueToKey("Label", nameof(Row.Label))
            .Append(ml.Transforms.LoadImages("Image", null, nameof(Row.ImagePath)))
            .Fit(view).Transform(view);
        return ml.MulticlassClassification.Trainers.RegNet(options).Fit(prepared);
    }

    /// <summary>Asserts that two models hold bit-identical parameters and buffers.</summary>
    public static void AssertSameWeights(RegNetModel expected, RegNetModel actual)
    {
        var b = actual.state_dict();
        foreach (var (name, tensor) in expected.state_dict())
            Assert.IsTrue(tensor.eq(b[name]).all().item<bool>(), $"{name} differs");
    }

    public void Dispose()
    {
        try { Directory.Delete(Folder, recursive: true); } catch (IOException) { }
    }
}
