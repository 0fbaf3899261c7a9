using System.Text;
using SkiaSharp;

namespace RegNetML.Tool.Tests;

[TestClass]
public sealed class DataCheckTests
{
    /// <summary>tests/fixtures/augmentation of this repository (a CMYK JPEG and an RGBA PNG the decoder tests use).</summary>
    private static string Fixture(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "RegNetML.sln"))) dir = dir.Parent;
        Assert.IsNotNull(dir, "repository root not found");
        return Path.Combine(dir.FullName, "tests", "fixtures", "augmentation", name);
    }

    /// <summary>The bad inputs of the reliability work, in class folders: returns their paths.</summary>
    private static string[] SeedBadFiles(string folder)
    {
        string truncated = Path.Combine(folder, "red", "truncated.jpg");
        ToolImages.WritePng(truncated, 64, new Random(5), 1);
        var jpeg = File.ReadAllBytes(truncated);
        Assert.IsTrue(jpeg[0] == 0xFF && jpeg[1] == 0xD8, "a JPEG was written");
        File.WriteAllBytes(truncated, jpeg[..(jpeg.Length * 6 / 10)]);
        string empty = Path.Combine(folder, "blue", "empty.png");
        File.WriteAllBytes(empty, Array.Empty<byte>());
        string text = Path.Combine(folder, "blue", "notes.png");
        File.WriteAllText(text, "this is a text file with a .png name\n", Encoding.UTF8);
        return new[] { truncated, empty, text };
    }

    [TestMethod]
    public void FindsEveryBadFileInAFolderAndExitsNonZero()
    {
        using var images = new ToolImages();
        string folder = images.Folder("data", perClass: 5);
        var bad = SeedBadFiles(folder);
        var run = ToolRun.Invoke("data", "check", folder);
        Assert.AreEqual(1, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, $"bad: {bad[0]}: truncated");
        StringAssert.Contains(run.Output, $"bad: {bad[1]}: empty: zero bytes");
        StringAssert.Contains(run.Output, $"bad: {bad[2]}: not an image");
        StringAssert.Contains(run.Output, "looks like text");
        StringAssert.Contains(run.Output, "13 images, 2 classes, 3 bad");
        Assert.AreEqual(3, run.Output.Split('\n').Count(l => l.StartsWith("bad: ")), run.Output);
    }

    [TestMethod]
    public void FindsMissingPathsInACsvAndNotesCmykAlphaAnd16Bit()
    {
        using var images = new ToolImages();
        string folder = images.Folder("data", perClass: 3);
        var bad = SeedBadFiles(folder);
        string cmyk = Path.Combine(folder, "red", "cmyk.jpg"), rgba = Path.Combine(folder, "blue", "rgba.png"), deep = Path.Combine(folder, "blue", "deep.png");
        File.Copy(Fixture("decode_cmyk.jpg"), cmyk);
        File.Copy(Fixture("decode_rgba.png"), rgba);
        ToolImages.WritePng(deep, 16, new Random(3), 0, SKColorType.RgbaF16);
        Assert.AreEqual(16, File.ReadAllBytes(deep)[24], "the encoder wrote a 16-bit PNG");
        string missing = Path.Combine(folder, "red", "gone.png");
        string csv = Path.Combine(images.Root, "data.csv");
        var files = Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Append(missing);
        File.WriteAllLines(csv, files.Select(f => $"{f},{Path.GetFileName(Path.GetDirectoryName(f))}"));

        var run = ToolRun.Invoke("data", "check", csv);
        Assert.AreEqual(1, run.ExitCode, run.Output);
        foreach (var file in bad.Append(missing)) StringAssert.Contains(run.Output, $"bad: {file}: ");
        StringAssert.Contains(run.Output, $"bad: {missing}: missing");
        Assert.AreEqual(4, run.Output.Split('\n').Count(l => l.StartsWith("bad: ")), run.Output);
        StringAssert.Contains(run.Output, "1 image(s) with CMYK");
        StringAssert.Contains(run.Output, "1 image(s) with 16-bit");
        StringAssert.Contains(run.Output, "image(s) with alpha channel");
    }

    [TestMethod]
    public void ACleanFolderHasNoBadFiles()
    {
        using var images = new ToolImages();
        string folder = images.Folder("data", perClass: 4, classes: new[] { "a", "b", "c" });
        var run = ToolRun.Invoke("data", "check", folder);
        Assert.AreEqual(0, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, "12 images, 3 classes, 0 bad");
        Assert.DoesNotContain("bad: ", run.Output);
        Assert.DoesNotContain("note: ", run.Output);
    }

    [TestMethod]
    public void SampleWritesTheEmbeddedFashionMnistSubset()
    {
        using var images = new ToolImages();
        string folder = Path.Combine(images.Root, "fmnist");
        var run = ToolRun.Invoke("data", "sample", folder);
        Assert.AreEqual(0, run.ExitCode, run.Output);
        Assert.HasCount(10, Directory.GetDirectories(Path.Combine(folder, "train")));
        Assert.HasCount(1000, Directory.GetFiles(Path.Combine(folder, "train"), "*.png", SearchOption.AllDirectories));
        Assert.AreEqual(0, ToolRun.Invoke("data", "check", Path.Combine(folder, "test")).ExitCode);
    }
}
