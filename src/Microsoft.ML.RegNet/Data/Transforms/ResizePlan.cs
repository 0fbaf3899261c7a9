namespace Microsoft.ML.RegNet.Data.Transforms;

/// <summary>An integer rectangle in image pixels.</summary>
internal readonly record struct CropBox(int X, int Y, int Width, int Height)
{
    /// <summary>Area in pixels.</summary>
    public long Area => (long)Width * Height;
}

/// <summary>
/// The geometry of one crop-and-resize, decided before any pixel is touched: the <see cref="Source"/> rectangle is
/// resampled onto a <see cref="ResizedWidth"/>×<see cref="ResizedHeight"/> grid, and the window of
/// <see cref="OutputWidth"/>×<see cref="OutputHeight"/> pixels at (<see cref="WindowX"/>, <see cref="WindowY"/>) of that grid is
/// the output. A random-resized crop is a source crop with the grid equal to the output; the evaluation transform is the
/// whole image resized with a centred window. <see cref="InceptionCrop.Apply(RgbImage, ResizePlan, RgbImage?)"/> executes it.
/// </summary>
internal readonly record struct ResizePlan(CropBox Source, int ResizedWidth, int ResizedHeight, int WindowX, int WindowY,
    int OutputWidth, int OutputHeight)
{
    /// <summary>True when a random crop found no valid draw and fell back to the evaluation crop.</summary>
    public bool IsFallback { get; init; }
}
