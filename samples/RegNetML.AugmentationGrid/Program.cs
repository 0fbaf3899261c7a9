using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Configs;
using Microsoft.ML.RegNet.Data;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Data.Transforms;
using Microsoft.ML.RegNet.Models;
using RegNetML.AugmentationGrid;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

// Usage:
//   dotnet run -c Release --project samples/RegNetML.AugmentationGrid -- [--out grid.png] [--seed N] [image files...]
//   dotnet run -c Release --project samples/RegNetML.AugmentationGrid -- --benchmark [--images 256] [--train-steps 3]
var arguments = args.ToList();
string? Option(string name, string? fallback = null)
{
    int i = arguments.IndexOf(name);
    if (i < 0) return fallback;
    string value = arguments[i + 1];
    arguments.RemoveRange(i, 2);
    return value;
}
bool Flag(string name) => arguments.Remove(name);

if (Flag("--benchmark"))
{
    int images = int.Parse(Option("--images", "256")!);
    int trainSteps = int.Parse(Option("--train-steps", "3")!);
    Benchmark.Run(images, trainSteps);
    return;
}

string output = Option("--out", "augmentation-grid.png")!;
int seed = int.Parse(Option("--seed", "0")!);
const int cell = 224, columns = 8, gap = 4;
var sources = arguments.Count > 0
    ? arguments.Select(ImageDecoder.DecodeFile).ToList()
    : Enumerable.Range(0, 3).Select(i => ImageDecoder.Decode(SyntheticImages.Jpeg(500, 375, 10 + i), $"synthetic {i}")).ToList();

// Column 0: the whole image letterboxed; column 1: the evaluation crop; then training augmentations
// (inception crop with area factor 0.08 → flip → PCA lighting, shown on bytes at 10× the usual std so it is visible).
var train = new ImageAugmenter(AugmentationOptions.Training(0.08), cell, ImageNormalization.ImageNet);
var strongLighting = new PcaLighting(1.0);
var eval = new EvaluationCrop(cell);
using var grid = new SKBitmap(new SKImageInfo(columns * (cell + gap) + gap, sources.Count * (cell + gap) + gap, SKColorType.Rgba8888, SKAlphaType.Opaque));
using (var canvas = new SKCanvas(grid))
{
    canvas.Clear(SKColors.White);
    for (int r = 0; r < sources.Count; r++)
    {
        var src = sources[r];
        double scale = Math.Min((double)cell / src.Width, (double)cell / src.Height);
        var whole = BilinearResize.Resize(src, Math.Max(1, (int)(src.Width * scale)), Math.Max(1, (int)(src.Height * scale)));
        Draw(canvas, whole, gap, gap + r * (cell + gap) + (cell - whole.Height) / 2);
        Draw(canvas, eval.Apply(src), gap + (cell + gap), gap + r * (cell + gap));
        for (int c = 2; c < columns; c++)
        {
            var random = AugmentationRandom.ForSample(seed, epoch: c, index: r);
            var augmented = train.Augment(src, random, new float[3]);
            strongLighting.Apply(augmented, random);
            Draw(canvas, augmented, gap + c * (cell + gap), gap + r * (cell + gap));
        }
    }
}
using (var data = grid.Encode(SKEncodedImageFormat.Png, 100))
using (var file = File.Create(output))
    data.SaveTo(file);
Console.WriteLine($"Wrote {output}: {sources.Count} rows × {columns} columns (original, evaluation crop, {columns - 2} training augmentations).");

static void Draw(SKCanvas canvas, RgbImage image, int x, int y)
{
    using var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
    var rgba = new byte[image.Width * image.Height * 4];
    var px = image.Pixels;
    for (int i = 0, j = 0; j < px.Length; i += 4, j += 3)
    {
        rgba[i] = px[j];
        rgba[i + 1] = px[j + 1];
        rgba[i + 2] = px[j + 2];
        rgba[i + 3] = 255;
    }
    System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
    canvas.DrawBitmap(bitmap, x, y);
}

internal static class Benchmark
{
    private sealed class Row
    {
        [VectorType]
        public byte[] Image { get; set; } = [];

        public float LabelValue { get; set; }
    }

    public static void Run(int count, int trainSteps)
    {
        Console.WriteLine($"Input pipeline benchmark: {count} JPEG files of 500×375 (SkiaSharp, quality 90) → 224×224 float CHW; {Environment.ProcessorCount} cores.");
        var jpegs = Enumerable.Range(0, count).Select(i => SyntheticImages.Jpeg(500, 375, i)).ToArray();
        Console.WriteLine($"  mean JPEG size {jpegs.Average(j => j.Length) / 1024:F1} KiB");
        var augmenter = new ImageAugmenter(AugmentationOptions.Training(0.08), 224, ImageNormalization.ImageNet);

        // 1. One thread, no pipeline: decode + crop + flip + lighting + normalise.
        var buffer = new float[augmenter.OutputLength];
        var scratch = new RgbImage(224, 224);
        for (int i = 0; i < Math.Min(16, count); i++)
            augmenter.Process(ImageDecoder.Decode(jpegs[i]), AugmentationRandom.ForSample(0, 0, i), buffer, scratch);
        byte[]? decodeBuffer = null;
        var sw = Stopwatch.StartNew();
        double decodeSeconds = 0;
        for (int i = 0; i < count; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            var image = ImageDecoder.Decode(jpegs[i], null, ref decodeBuffer);
            decodeSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
            augmenter.Process(image, AugmentationRandom.ForSample(0, 0, i), buffer, scratch);
        }
        double single = count / sw.Elapsed.TotalSeconds;
        Console.WriteLine($"  single thread, decode+augment loop:  {single,8:F1} images/s  (decode {1000 * decodeSeconds / count:F2} ms, augment+normalise {1000 * (sw.Elapsed.TotalSeconds - decodeSeconds) / count:F2} ms per image)");

        // 2. ImageBatchPipeline over an IDataView of encoded bytes (what the trainer uses), 1 and all workers.
        var ml = new MLContext(0);
        var raw = ml.Data.LoadFromEnumerable(jpegs.Select((j, i) => new Row { Image = j, LabelValue = i % 10 }));
        var data = ml.Transforms.Conversion.MapValueToKey("Label", "LabelValue").Fit(raw).Transform(raw);
        double PipelineRate(int workers)
        {
            var pipeline = new ImageBatchPipeline(new ImageBatchPipelineOptions { BatchSize = 32, ImageSize = 224, WorkerThreads = workers, Shuffle = true, Seed = 1 });
            foreach (var b in pipeline.Read(data, 0)) b.Dispose(); // warm-up
            var watch = Stopwatch.StartNew();
            int n = 0;
            foreach (var b in pipeline.Read(data, 1))
                using (b) n += b.Count;
            return n / watch.Elapsed.TotalSeconds;
        }
        double p1 = PipelineRate(1), pAll = PipelineRate(Environment.ProcessorCount);
        Console.WriteLine($"  ImageBatchPipeline, 1 worker:        {p1,8:F1} images/s (batches of 32 as tensors)");
        Console.WriteLine($"  ImageBatchPipeline, {Environment.ProcessorCount} workers:       {pAll,8:F1} images/s");

        // 3. RegNetX-002 training rate at 224, batch 32, AdamW (synthetic batch; first step is warm-up).
        using var model = new RegNetModel(RegNetSpec.FromName("X002"));
        model.train();
        var optimizer = optim.AdamW(model.parameters(), 1e-3);
        using var x = randn(32, 3, 224, 224);
        using var y = randint(0, 1000, new long[] { 32 }, dtype: ScalarType.Int64);
        void Step(Tensor images, Tensor labels)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.forward(images), labels);
            loss.backward();
            optimizer.step();
        }
        Step(x, y);
        var trainWatch = Stopwatch.StartNew();
        for (int s = 0; s < trainSteps; s++) Step(x, y);
        double trainRate = 32 * trainSteps / trainWatch.Elapsed.TotalSeconds;
        Console.WriteLine($"  RegNetX-002 training (batch 32, 224, AdamW, torch threads {get_num_threads()}): {trainRate,6:F1} images/s ({trainWatch.Elapsed.TotalSeconds / trainSteps:F2} s/step)");
        Console.WriteLine($"  pipeline / training: single thread {single / trainRate:F1}×, all workers {pAll / trainRate:F1}×");

        // 4. Both together: training fed by the pipeline (overlap check).
        var fed = new ImageBatchPipeline(new ImageBatchPipelineOptions { BatchSize = 32, ImageSize = 224, WorkerThreads = 1, Seed = 1 });
        var both = Stopwatch.StartNew();
        int steps = 0;
        foreach (var b in fed.Read(data, 2))
            using (b)
            {
                Step(b.Images, b.Labels!);
                if (++steps == trainSteps) break;
            }
        Console.WriteLine($"  training fed by ImageBatchPipeline (1 worker): {32 * steps / both.Elapsed.TotalSeconds,6:F1} images/s incl. pipeline start-up");
    }
}
