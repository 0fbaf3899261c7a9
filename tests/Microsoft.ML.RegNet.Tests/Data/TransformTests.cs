using System.Text.Json;
using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Tests.Data;

[TestClass]
public sealed class TransformTests
{
    // Kolmogorov–Smirnov statistic of samples against U(a, b).
    private static double KsUniform(List<double> samples, double a, double b)
    {
        samples.Sort();
        double d = 0;
        for (int i = 0; i < samples.Count; i++)
        {
            double f = Math.Clamp((samples[i] - a) / (b - a), 0, 1);
            d = Math.Max(d, Math.Max((i + 1.0) / samples.Count - f, f - (double)i / samples.Count));
        }
        return d;
    }

    [TestMethod]
    [DataRow(0.08, AspectRatioSampling.Uniform)]
    [DataRow(0.25, AspectRatioSampling.LogUniform)]
    public void InceptionCropAreaAndAspectFollowTheRecipe(double areaFactor, AspectRatioSampling sampling)
    {
        // Geometry only (no pixels): a large square "image" so rounding is negligible.
        const int side = 2000;
        var crop = new InceptionCrop(224, areaFactor, sampling);
        var rng = new AugmentationRandom(42);
        var lowFractions = new List<double>();
        int fallbacks = 0;
        for (int i = 0; i < 6000; i++)
        {
            var plan = crop.Sample(side, side, rng);
            if (plan.IsFallback) { fallbacks++; continue; }
            var b = plan.Source;
            Assert.IsTrue(b.X >= 0 && b.Y >= 0 && b.X + b.Width <= side && b.Y + b.Height <= side, $"crop {b} outside image");
            double fraction = (double)b.Area / ((double)side * side);
            Assert.IsTrue(fraction >= areaFactor - 2e-3 && fraction <= 1 + 2e-3, $"area fraction {fraction}");
            double aspect = (double)b.Width / b.Height;
            Assert.IsTrue(aspect >= 0.75 - 2e-3 && aspect <= 4.0 / 3 + 2e-3, $"aspect {aspect}");
            // For a square image every draw with fraction ≤ 3/4 fits whatever its aspect, so below 3/4 the accepted
            // fractions are exactly the drawn ones: uniform on [areaFactor, 3/4].
            if (fraction <= 0.75) lowFractions.Add(fraction);
        }
        Assert.IsLessThan(10, fallbacks, "fallbacks on a square image");
        Assert.IsGreaterThan(3000, lowFractions.Count);
        double ks = KsUniform(lowFractions, areaFactor, 0.75);
        Assert.IsLessThan(1.63 / Math.Sqrt(lowFractions.Count), ks, $"KS statistic (n={lowFractions.Count})");
    }

    [TestMethod]
    public void InceptionCropTakesOffsetsAndSizeFromTheFirstValidDraw()
    {
        // Replays the documented algorithm on the same random stream: the seed trainer's bug (offsets of one try with the
        // size of another) must not happen, so the box is exactly the first fitting (w, h) with its own offsets.
        var crop = new InceptionCrop(32, areaFactor: 0.08);
        for (int seed = 0; seed < 300; seed++)
        {
            const int width = 60, height = 20; // wide: many draws do not fit
            var plan = crop.Sample(width, height, new AugmentationRandom((ulong)seed));
            var r = new AugmentationRandom((ulong)seed);
            CropBox? expected = null;
            for (int attempt = 0; attempt < 10 && expected is null; attempt++)
            {
                double area = r.NextDouble(0.08, 1.0) * width * height;
                double aspect = r.NextDouble(3.0 / 4, 4.0 / 3);
                int w = (int)Math.Round(Math.Sqrt(area * aspect)), h = (int)Math.Round(Math.Sqrt(area / aspect));
                if (r.NextDouble() < 0.5) (w, h) = (h, w);
                if (w >= 1 && h >= 1 && w <= width && h <= height)
                {
                    int y = r.NextInt(height - h + 1);
                    expected = new CropBox(r.NextInt(width - w + 1), y, w, h);
                }
            }
            if (expected is null) Assert.IsTrue(plan.IsFallback);
            else Assert.AreEqual(expected.Value, plan.Source);
        }
    }

    [TestMethod]
    public void InceptionCropOutputsTheRequestedSizeEvenForTinyImages()
    {
        var crop = new InceptionCrop(32, 0.08);
        var rng = new AugmentationRandom(1);
        foreach (var (w, h) in new[] { (1, 1), (2, 7), (5, 5), (300, 3) })
        {
            var img = TestImages.Pattern(w, h);
            for (int i = 0; i < 20; i++)
            {
                var outImg = crop.Apply(img, rng);
                Assert.AreEqual(32, outImg.Width);
                Assert.AreEqual(32, outImg.Height);
            }
        }
    }

    [TestMethod]
    public void InceptionCropFallsBackToTheEvaluationCropWhenNothingFits()
    {
        // Aspect forced to 3 on a 40×40 image: no draw of area ≥ 0.9 fits either orientation.
        var crop = new InceptionCrop(16, areaFactor: 0.9, minAspectRatio: 3, maxAspectRatio: 3);
        var plan = crop.Sample(40, 40, new AugmentationRandom(3));
        Assert.IsTrue(plan.IsFallback);
        Assert.AreEqual(crop.Fallback.Plan(40, 40) with { IsFallback = true }, plan);
    }

    [TestMethod]
    public void InvalidParametersGiveClearMessages()
    {
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new InceptionCrop(224, areaFactor: 0));
        StringAssert.Contains(e.Message, "area factor");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new InceptionCrop(224, areaFactor: 1.5));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new InceptionCrop(224, areaFactor: double.NaN));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new InceptionCrop(0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new EvaluationCrop(-3));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new EvaluationCrop(224, 1.2));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new HorizontalFlip(1.5));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new PcaLighting(-0.1));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new EvaluationCrop(32).Plan(0, 10));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RgbImage(-1, 4));
        var o = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => (AugmentationOptions.Training() with { AreaFactor = -1 }).Validate());
        StringAssert.Contains(o.Message, "AreaFactor");
    }

    [TestMethod]
    public void FlipRateIsAboutOneHalfAndMirrors()
    {
        var flip = new HorizontalFlip();
        var rng = new AugmentationRandom(7);
        int n = 20000, flips = 0;
        for (int i = 0; i < n; i++) if (flip.Sample(rng)) flips++;
        Assert.AreEqual(0.5, flips / (double)n, 4 * Math.Sqrt(0.25 / n));

        var img = TestImages.Pattern(5, 3);
        var mirrored = img.Clone();
        HorizontalFlip.Mirror(mirrored);
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 5; x++)
                for (int c = 0; c < 3; c++)
                    Assert.AreEqual(img.Data[(y * 5 + x) * 3 + c], mirrored.Data[(y * 5 + 4 - x) * 3 + c]);
    }

    [TestMethod]
    public void LightingOffsetsHaveThePcaCovariance()
    {
        var lighting = new PcaLighting(0.1);
        var rng = new AugmentationRandom(11);
        const int n = 20000;
        var sum = new double[3];
        var cov = new double[3, 3];
        Span<float> o = stackalloc float[3];
        for (int i = 0; i < n; i++)
        {
            lighting.Sample(rng, o);
            for (int a = 0; a < 3; a++)
            {
                sum[a] += o[a];
                for (int b = 0; b < 3; b++) cov[a, b] += o[a] * (double)o[b];
            }
        }
        var v = PcaLighting.ImageNetEigenvectors;
        var l = PcaLighting.ImageNetEigenvalues;
        for (int a = 0; a < 3; a++)
        {
            Assert.AreEqual(0, sum[a] / n, 1e-3, $"mean of channel {a}");
            for (int b = 0; b < 3; b++)
            {
                // Cov = V diag((σ λ)²) Vᵀ.
                double expected = 0;
                for (int j = 0; j < 3; j++) expected += v[a, j] * v[b, j] * Math.Pow(0.1 * l[j], 2);
                Assert.AreEqual(expected, cov[a, b] / n, 0.05 * 0.1 * 0.1 * l[0] * l[0] + 1e-7, $"cov[{a},{b}]");
            }
        }
    }

    [TestMethod]
    public void LightingOnBytesAddsRoundedClippedOffsets()
    {
        var img = new RgbImage(2, 1, new byte[] { 0, 100, 250, 10, 128, 255 });
        PcaLighting.Apply(img, new float[] { -0.1f, 0.02f, 0.1f });
        CollectionAssert.AreEqual(new byte[] { 0, 105, 255, 0, 133, 255 }, img.Pixels.ToArray());
    }

    private sealed record EvalCase(string name, int width, int height, int size, double crop_fraction,
        int resized_width, int resized_height, int offset_x, int offset_y);

    private sealed record Fixtures(EvalCase[] eval_cases);

    [TestMethod]
    public void CentredCropPlanMatchesTorchvisionGeometry()
    {
        // The geometry the inception crop's fallback reports (resized sides, ceil-centred window), against
        // tests/fixtures/augmentation/generate_eval_crop_fixture.py (torchvision 0.14's resize and centre crop). The pixels
        // of the fallback are the evaluation transform's own (SavedModelParityTests checks those against ML.NET).
        var fixtures = JsonSerializer.Deserialize<Fixtures>(File.ReadAllText(TestImages.Fixture("fixtures.json")))!;
        Assert.HasCount(3, fixtures.eval_cases);
        foreach (var c in fixtures.eval_cases)
        {
            var plan = new EvaluationCrop(c.size, c.crop_fraction).Plan(c.width, c.height);
            Assert.AreEqual((c.resized_width, c.resized_height, c.offset_x, c.offset_y),
                (plan.ResizedWidth, plan.ResizedHeight, plan.WindowX, plan.WindowY), c.name);
        }
    }

    [TestMethod]
    [DataRow(28, 64)]
    [DataRow(100, 32)]
    public void TrainingCropOfTheWholeImageIsTheEvaluationResizeExactly(int side, int size)
    {
        // Reference: the evaluation transform at crop fraction 1, which runs ML.NET's own ResizeImages. A crop that spans
        // the whole square image must give the same pixels, so training and evaluation see the same resampling.
        var image = TestImages.Pattern(side, side);
        var crop = new InceptionCrop(size, areaFactor: 1.0, minAspectRatio: 1, maxAspectRatio: 1);
        var plan = crop.Sample(side, side, AugmentationRandom.ForSample(1, 0, 0));
        Assert.AreEqual(new CropBox(0, 0, side, side), plan.Source);
        var expected = new EvaluationCrop(size, 1.0).Apply(image).Pixels.ToArray();
        CollectionAssert.AreEqual(expected, crop.Apply(image, plan).Pixels.ToArray());
    }

    [TestMethod]
    public void TrainingCropOfABoxResamplesTheBoxAsMLNetResamplesItCutOut()
    {
        // Reference: the box cut out by hand and resized by ML.NET's resizer (evaluation transform at crop fraction 1).
        var image = TestImages.Pattern(60, 45, salt: 3);
        var box = new CropBox(7, 5, 30, 30);
        var cut = new RgbImage(box.Width, box.Height);
        for (int y = 0; y < box.Height; y++)
            image.Pixels.Slice(((box.Y + y) * image.Width + box.X) * 3, box.Width * 3).CopyTo(cut.Pixels.Slice(y * box.Width * 3));
        var crop = new InceptionCrop(48, 0.08);
        var actual = crop.Apply(image, new ResizePlan(box, 48, 48, 0, 0, 48, 48)).Pixels.ToArray();
        var expected = new EvaluationCrop(48, 1.0).Apply(cut).Pixels.ToArray();
        int maxDiff = 0, exact = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            int d = Math.Abs(expected[i] - actual[i]);
            maxDiff = Math.Max(maxDiff, d);
            if (d == 0) exact++;
        }
        Assert.AreEqual(0, maxDiff, $"max difference ({exact} of {expected.Length} values identical)");
    }

    [TestMethod]
    [DataRow("decode_gray.png", 0)]
    [DataRow("decode_cmyk.jpg", 3)]
    public void DecoderTurnsGrayAlphaAndCmykIntoRgb(string file, int tolerance)
    {
        var image = ImageDecoder.DecodeFile(TestImages.Fixture(file));
        var expected = File.ReadAllBytes(TestImages.Fixture(file + ".expected.rgb"));
        var actual = image.Pixels.ToArray();
        Assert.HasCount(expected.Length, actual);
        int maxDiff = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
        Assert.IsLessThanOrEqualTo(tolerance, maxDiff, $"{file}: max difference from PIL convert('RGB')");
    }

    [TestMethod]
    public void DecoderComposesTransparentPixelsOverBlack()
    {
        // PIL's convert("RGB") keeps the colour under transparent pixels; composed over black it is colour × alpha / 255.
        var pil = File.ReadAllBytes(TestImages.Fixture("decode_rgba.png.expected.rgb"));
        using var codec = SkiaSharp.SKCodec.Create(TestImages.Fixture("decode_rgba.png"));
        using var unpremul = SkiaSharp.SKBitmap.Decode(codec, codec.Info.WithAlphaType(SkiaSharp.SKAlphaType.Unpremul));
        var alpha = unpremul.Pixels.Select(c => c.Alpha).ToArray();
        var expected = pil.Select((v, i) => (int)Math.Round(v * alpha[i / 3] / 255.0, MidpointRounding.AwayFromZero)).ToArray();
        var actual = ImageDecoder.DecodeFile(TestImages.Fixture("decode_rgba.png")).Pixels.ToArray();
        Assert.HasCount(expected.Length, actual);
        Assert.IsLessThanOrEqualTo(1, expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max(), "PIL's RGB composed over black");
        Assert.IsTrue(alpha.Any(a => a is > 0 and < 255), "the fixture has partly transparent pixels");
    }

    [TestMethod]
    public void DecoderRejectsEmptyAndGarbageWithTheSourceName()
    {
        var e = Assert.ThrowsExactly<InvalidDataException>(() => ImageDecoder.Decode(ReadOnlySpan<byte>.Empty, "row 5"));
        StringAssert.Contains(e.Message, "row 5");
        StringAssert.Contains(e.Message, "empty");
        var g = Assert.ThrowsExactly<InvalidDataException>(() => ImageDecoder.Decode(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, "cat.jpg"));
        StringAssert.Contains(g.Message, "cat.jpg");
        var jpeg = TestImages.Encode(TestImages.Pattern(64, 48), SkiaSharp.SKEncodedImageFormat.Jpeg);
        var t = Assert.ThrowsExactly<InvalidDataException>(() => ImageDecoder.Decode(jpeg.AsSpan(0, jpeg.Length / 3), "half.jpg"));
        StringAssert.Contains(t.Message, "half.jpg");
    }

    [TestMethod]
    public void AugmenterDrawsCropFlipLightingInOrderAndFoldsLightingIntoNormalisation()
    {
        var image = TestImages.Pattern(50, 40);
        var withLighting = new ImageAugmenter(AugmentationOptions.Training(0.3), 16, ImageNormalization.ImageNet);
        var without = new ImageAugmenter(AugmentationOptions.Training(0.3) with { LightingStd = 0 }, 16, ImageNormalization.ImageNet);
        var a = new float[withLighting.OutputLength];
        var b = new float[without.OutputLength];
        withLighting.Process(image, AugmentationRandom.ForSample(3, 1, 7), a);
        without.Process(image, AugmentationRandom.ForSample(3, 1, 7), b);
        // Replay the draws: crop, flip, then lighting.
        var replay = AugmentationRandom.ForSample(3, 1, 7);
        withLighting.Crop!.Sample(50, 40, replay);
        withLighting.Flip!.Sample(replay);
        var offsets = withLighting.Lighting!.Sample(replay);
        int plane = 16 * 16;
        for (int c = 0; c < 3; c++)
        {
            float expected = offsets[c] / ImageNormalization.ImageNet.Std[c]; // unclipped, before mean/std (pycls)
            for (int i = 0; i < plane; i++) Assert.AreEqual(expected, a[c * plane + i] - b[c * plane + i], 1e-4);
        }
    }

    [TestMethod]
    public void NormalizerUsesTheNormalizationData()
    {
        var img = new RgbImage(1, 1, new byte[] { 255, 0, 51 });
        var dst = new float[3];
        PixelNormalizer.WriteChw(img, ImageNormalization.ImageNet, dst);
        Assert.AreEqual((1 - 0.485f) / 0.229f, dst[0], 1e-5);
        Assert.AreEqual(-0.456f / 0.224f, dst[1], 1e-5);
        Assert.AreEqual((0.2f - 0.406f) / 0.225f, dst[2], 1e-5);
        PixelNormalizer.WriteChw(img, ImageNormalization.ImageNetBgr, dst, new float[] { 0, 0, 0.1f });
        Assert.AreEqual((0.3f - 0.406f) / 0.225f, dst[0], 1e-5); // B plane first, lighting offset added before normalising
        Assert.AreEqual((1 - 0.485f) / 0.229f, dst[2], 1e-5);
    }
}
