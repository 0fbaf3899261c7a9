// Input pipeline benchmark (docs/benchmarks.md, "Input pipeline"): decoding and augmenting JPEG files against the rate
// at which RegNetX-002 trains. It times the library's internal input pipeline (ImageBatchPipeline, ImageAugmenter),
// which this project sees through InternalsVisibleTo, as the tests do.
//   dotnet run -c Release --project benchmarks/RegNetML.Benchmarks -- --input-pipeline [--images 256] [--train-steps 3]
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Data.Transforms;
using RegNetML.AugmentationGrid;
using TorchSharp;
using static TorchSharp.torch;

internal static class InputPipelineBenchmark
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
