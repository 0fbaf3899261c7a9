namespace Microsoft.ML.RegNet.Data.Transforms;

/// <summary>
/// A decoded 8-bit RGB image, rows top to bottom, pixels interleaved (HWC, 3 bytes per pixel, no row padding).
/// Every augmentation in this namespace reads and writes this layout.
/// </summary>
internal sealed class RgbImage
{
    /// <summary>Wraps (does not copy) an HWC RGB buffer of at least <c>width·height·3</c> bytes.</summary>
    public RgbImage(int width, int height, byte[] data)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"Image size must be positive (got {width}×{height}).");
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length < (long)width * height * 3)
            throw new ArgumentException($"Buffer holds {data.Length} bytes; {width}×{height} RGB needs {(long)width * height * 3}.", nameof(data));
        Width = width;
        Height = height;
        Data = data;
    }

    /// <summary>A new black image.</summary>
    public RgbImage(int width, int height) : this(width, height, Allocate(width, height)) { }

    private static byte[] Allocate(int width, int height)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"Image size must be positive (got {width}×{height}).");
        return new byte[checked(width * height * 3)];
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>The pixel buffer (may be longer than needed when pooled).</summary>
    public byte[] Data { get; }

    /// <summary>The meaningful bytes: <c>Width·Height·3</c>.</summary>
    public Span<byte> Pixels => Data.AsSpan(0, Width * Height * 3);

    /// <summary>Bytes per row.</summary>
    public int Stride => Width * 3;

    /// <summary>A deep copy.</summary>
    public RgbImage Clone() => new(Width, Height, Pixels.ToArray());
}
