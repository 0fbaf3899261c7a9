using System.Buffers;

namespace Microsoft.ML.RegNet.Data.Transforms;

/// <summary>
/// Bilinear resampling of <see cref="RgbImage"/>s with half-pixel centres and no antialiasing: source coordinate
/// <c>max((dst + 0.5)·in/out − 0.5, 0)</c>, neighbours clamped to the source rectangle. This is exactly
/// PyTorch's <c>interpolate(mode="bilinear", align_corners=False)</c> (torchvision tensor <c>resize(antialias=False)</c>)
/// and TensorFlow's <c>tf.image.resize(method="bilinear", antialias=False)</c> used by the seed trainer; it is not PIL's
/// bilinear, which widens the filter when downscaling. Results are rounded half-to-even, as both libraries do for uint8.
/// </summary>
/// <remarks>Per call the only allocations are pooled index/weight tables and two float rows; no per-pixel work allocates.</remarks>
internal static class BilinearResize
{
    /// <summary>Executes a plan into a new image.</summary>
    public static RgbImage Apply(RgbImage source, in ResizePlan plan)
    {
        var output = new RgbImage(plan.OutputWidth, plan.OutputHeight);
        Apply(source, plan, output);
        return output;
    }

    /// <summary>Executes a plan into <paramref name="output"/> (which must be <c>OutputWidth×OutputHeight</c>).</summary>
    public static void Apply(RgbImage source, in ResizePlan plan, RgbImage output)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(output);
        Validate(source, plan, output);

        int ow = plan.OutputWidth;
        int[] xIndex = ArrayPool<int>.Shared.Rent(ow * 2);
        float[] xWeight = ArrayPool<float>.Shared.Rent(ow * 2);
        float[] rows = ArrayPool<float>.Shared.Rent(ow * 3 * 2);
        try
        {
            FillColumnTables(plan, xIndex, xWeight);
            ResampleRows(source, plan, xIndex, xWeight, rows, output);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(xIndex);
            ArrayPool<float>.Shared.Return(xWeight);
            ArrayPool<float>.Shared.Return(rows);
        }
    }

    private static void Validate(RgbImage source, in ResizePlan plan, RgbImage output)
    {
        var box = plan.Source;
        if (box.X < 0 || box.Y < 0 || box.Width <= 0 || box.Height <= 0 || box.X + box.Width > source.Width || box.Y + box.Height > source.Height)
            throw new ArgumentException($"Source rectangle {box} lies outside the {source.Width}×{source.Height} image.", nameof(plan));
        if (plan.ResizedWidth <= 0 || plan.ResizedHeight <= 0 || plan.OutputWidth <= 0 || plan.OutputHeight <= 0
            || plan.WindowX < 0 || plan.WindowY < 0
            || plan.WindowX + plan.OutputWidth > plan.ResizedWidth || plan.WindowY + plan.OutputHeight > plan.ResizedHeight)
            throw new ArgumentException($"Invalid resize plan {plan}.", nameof(plan));
        if (output.Width != plan.OutputWidth || output.Height != plan.OutputHeight)
            throw new ArgumentException($"Output is {output.Width}×{output.Height}, the plan makes {plan.OutputWidth}×{plan.OutputHeight}.", nameof(output));
    }

    // Column tables: byte offsets of the two neighbours within a source row, and their weights.
    private static void FillColumnTables(in ResizePlan plan, int[] xIndex, float[] xWeight)
    {
        var box = plan.Source;
        float scaleX = (float)box.Width / plan.ResizedWidth;
        for (int i = 0; i < plan.OutputWidth; i++)
        {
            Coordinate(plan.WindowX + i, scaleX, box.Width, out int x0, out int x1, out float w1);
            xIndex[2 * i] = (box.X + x0) * 3;
            xIndex[2 * i + 1] = (box.X + x1) * 3;
            xWeight[2 * i] = 1f - w1;
            xWeight[2 * i + 1] = w1;
        }
    }

    // Interpolates each output row vertically between two horizontally interpolated source rows.
    private static void ResampleRows(RgbImage source, in ResizePlan plan, int[] xIndex, float[] xWeight, float[] rows, RgbImage output)
    {
        var box = plan.Source;
        int ow = plan.OutputWidth, oh = plan.OutputHeight;
        Span<float> rowA = rows.AsSpan(0, ow * 3), rowB = rows.AsSpan(ow * 3, ow * 3);
        int rowAIndex = -1, rowBIndex = -1;
        float scaleY = (float)box.Height / plan.ResizedHeight;
        byte[] src = source.Data;
        Span<byte> dst = output.Pixels;
        int srcStride = source.Stride;
        for (int j = 0; j < oh; j++)
        {
            Coordinate(plan.WindowY + j, scaleY, box.Height, out int y0, out int y1, out float wy1);
            y0 += box.Y;
            y1 += box.Y;
            // Reuse horizontally interpolated rows between consecutive output rows (upscaling shares them).
            if (y0 != rowAIndex)
            {
                if (y0 == rowBIndex)
                {
                    var t = rowA; rowA = rowB; rowB = t;
                    (rowAIndex, rowBIndex) = (rowBIndex, rowAIndex);
                }
                else
                {
                    Horizontal(src.AsSpan(y0 * srcStride, srcStride), xIndex, xWeight, ow, rowA);
                    rowAIndex = y0;
                }
            }
            if (y1 != rowBIndex)
            {
                if (y1 == rowAIndex) rowA.CopyTo(rowB);
                else Horizontal(src.AsSpan(y1 * srcStride, srcStride), xIndex, xWeight, ow, rowB);
                rowBIndex = y1;
            }
            float wy0 = 1f - wy1;
            Span<byte> outRow = dst.Slice(j * ow * 3, ow * 3);
            for (int k = 0; k < outRow.Length; k++)
            {
                float v = rowA[k] * wy0 + rowB[k] * wy1;
                outRow[k] = ToByte(v);
            }
        }
    }

    /// <summary>Resizes a whole image to <paramref name="width"/>×<paramref name="height"/>.</summary>
    public static RgbImage Resize(RgbImage source, int width, int height) =>
        Apply(source, new ResizePlan(new CropBox(0, 0, source.Width, source.Height), width, height, 0, 0, width, height));

    // PyTorch's area_pixel_compute_source_index (align_corners = false) with float arithmetic, as its float kernel does.
    private static void Coordinate(int dst, float scale, int inSize, out int i0, out int i1, out float w1)
    {
        float s = scale * (dst + 0.5f) - 0.5f;
        if (s < 0) s = 0;
        i0 = (int)s;
        if (i0 > inSize - 1) i0 = inSize - 1;
        i1 = i0 < inSize - 1 ? i0 + 1 : i0;
        w1 = s - i0;
        if (i1 == i0) w1 = 0;
    }

    private static void Horizontal(ReadOnlySpan<byte> row, int[] xIndex, float[] xWeight, int ow, Span<float> dst)
    {
        for (int i = 0, d = 0; i < ow; i++, d += 3)
        {
            int a = xIndex[2 * i], b = xIndex[2 * i + 1];
            float w0 = xWeight[2 * i], w1 = xWeight[2 * i + 1];
            dst[d] = row[a] * w0 + row[b] * w1;
            dst[d + 1] = row[a + 1] * w0 + row[b + 1] * w1;
            dst[d + 2] = row[a + 2] * w0 + row[b + 2] * w1;
        }
    }

    private static byte ToByte(float v)
    {
        float r = MathF.Round(v, MidpointRounding.ToEven);
        return r <= 0 ? (byte)0 : r >= 255 ? (byte)255 : (byte)r;
    }
}
