using SkiaSharp;

namespace RegNetML.Tool.Data;

/// <summary>What a strict decode of one file found: an error (the image cannot be used) and notes (it can, but differs).</summary>
internal sealed record ImageFinding(string Path, string Label, string? Error, IReadOnlyList<string> Notes);

/// <summary>
/// Decodes every pixel of an image with SkiaSharp, the decoder ML.NET's <c>LoadImages</c> uses, and refuses anything
/// short of a complete decode: a truncated JPEG that a lenient decoder would pad with grey is an error here.
/// </summary>
internal static class ImageCheck
{
    public static ImageFinding Check(ImageItem item)
    {
        string path = item.ImagePath;
        if (!File.Exists(path)) return Bad(item, "missing: the file does not exist");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return Bad(item, $"unreadable: {e.Message}"); }
        if (bytes.Length == 0) return Bad(item, "empty: zero bytes");
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data);
        if (codec is null) return Bad(item, $"not an image: no decoder recognises its content ({Describe(bytes)})");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result != SKCodecResult.Success)
            return Bad(item, result == SKCodecResult.IncompleteInput ? "truncated: the image data ends early" : $"does not decode ({result})");
        return new ImageFinding(path, item.Label, null, Notes(bytes, codec));
    }

    private static ImageFinding Bad(ImageItem item, string error) => new(item.ImagePath, item.Label, error, Array.Empty<string>());

    private static string Describe(byte[] bytes)
    {
        // Text editors write a UTF-8 byte-order mark first.
        var head = bytes.AsSpan().StartsWith(new byte[] { 0xEF, 0xBB, 0xBF }) ? bytes[3..] : bytes;
        int printable = head.Take(64).Count(b => b is >= 32 and < 127 or (byte)'\n' or (byte)'\r' or (byte)'\t');
        return printable == Math.Min(64, head.Length) ? "it looks like text" : $"starts with {Convert.ToHexString(bytes.AsSpan(0, Math.Min(4, bytes.Length)))}";
    }

    /// <summary>Usable but worth knowing: the pipeline converts these to 8-bit RGB, losing what they carry.</summary>
    private static List<string> Notes(byte[] bytes, SKCodec codec)
    {
        var notes = new List<string>();
        if (codec.EncodedFormat == SKEncodedImageFormat.Png && bytes.Length > 26)
        {
            // IHDR: bit depth at byte 24, colour type at byte 25.
            if (bytes[24] == 16) notes.Add("16-bit");
            if (bytes[25] is 4 or 6) notes.Add("alpha channel");
        }
        else if (codec.Info.AlphaType != SKAlphaType.Opaque) notes.Add("alpha channel");
        if (codec.EncodedFormat == SKEncodedImageFormat.Jpeg && JpegComponents(bytes) == 4) notes.Add("CMYK");
        return notes;
    }

    /// <summary>The component count of a JPEG's start-of-frame segment (4 = CMYK/YCCK), or 0 when none is found.</summary>
    private static int JpegComponents(byte[] bytes)
    {
        int i = 2;
        while (i + 9 < bytes.Length && bytes[i] == 0xFF)
        {
            byte marker = bytes[i + 1];
            int length = (bytes[i + 2] << 8) | bytes[i + 3];
            if (marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC) return bytes[i + 9];
            i += 2 + length;
        }
        return 0;
    }
}
