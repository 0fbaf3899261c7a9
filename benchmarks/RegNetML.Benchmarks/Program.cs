// Scoring throughput: TorchSharp eval vs ONNX Runtime (docs/benchmarks.md, "Scoring").
//   dotnet run -c Release --project benchmarks/RegNetML.Benchmarks -- --threads 2 --models X002,Y016 --batches 1,32 --size 224
// Prints CSV rows: engine,model,batch,images_per_s,ms_per_batch.
// With --input-pipeline [--images 256] [--train-steps 3] it runs the input pipeline benchmark instead (InputPipelineBenchmark.cs);
// with --training-step, one training step timed in parts (TrainingStepBenchmark.cs).
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.RegNet;
using Microsoft.ML.RegNet.Onnx;
using TorchSharp;
using static TorchSharp.torch;

string Text(string name, string fallback) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
int Number(string name, int fallback) => int.Parse(Text(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

if (args.Contains("--input-pipeline"))
{
    InputPipelineBenchmark.Run(Number("--images", 256), Number("--train-steps", 3));
    return;
}

if (args.Contains("--training-step"))
{
    TrainingStepBenchmark.Run(Text("--model", "X002"), Number("--size", 64), Number("--batch", 32), Number("--threads", 2), Number("--steps", 25),
        args.Contains("--channels-last"), args.Contains("--torchsharp-adamw"));
    return;
}

var options = Args.Parse(args);
torch.set_num_threads(options.Threads);
Console.WriteLine($"# {options.Threads} threads, {options.Size}x{options.Size}, random weights, .NET {Environment.Version}, {Environment.ProcessorCount} logical CPUs");
Console.WriteLine("engine,model,batch,images_per_s,ms_per_batch");

foreach (string name in options.Models)
{
    using var model = new RegNetModel(RegNetSpec.FromName(name), 1000);
    model.eval();
    foreach (int batch in options.Batches)
    {
        var input = new float[batch * 3 * options.Size * options.Size];
        var random = new Random(1);
        for (int i = 0; i < input.Length; i++) input[i] = (float)random.NextDouble();

        var torchResult = Measure(options, batch, () =>
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            using var x = tensor(input, new long[] { batch, 3, options.Size, options.Size });
            model.call(x);
        });
        Report("torchsharp-eval", name, batch, torchResult);

        foreach (bool fold in options.Fold)
        {
            var onnx = RegNetOnnxExporter.ExportToBytes(model, new OnnxExportOptions { FoldBatchNorm = fold });
            using var session = new RegNetOnnxSession(onnx, options.Threads);
            var ortResult = Measure(options, batch, () => session.Score(input, batch, options.Size, options.Size));
            Report(fold ? "onnxruntime-folded" : "onnxruntime", name, batch, ortResult);
        }
    }
}

static (double ImagesPerSecond, double MsPerBatch) Measure(Args options, int batch, Action run)
{
    // Warm-up: libtorch/oneDNN and ONNX Runtime build their kernels on the first calls (TorchSharp needed ~5 calls here).
    var warm = Stopwatch.StartNew();
    for (int i = 0; i < 5 || warm.Elapsed.TotalSeconds < options.MinSeconds / 2; i++) run();
    int iterations = 0;
    var watch = Stopwatch.StartNew();
    while (iterations < options.MinIterations || watch.Elapsed.TotalSeconds < options.MinSeconds)
    {
        run();
        iterations++;
    }
    double seconds = watch.Elapsed.TotalSeconds;
    return (batch * iterations / seconds, seconds / iterations * 1000);
}

static void Report(string engine, string model, int batch, (double ImagesPerSecond, double MsPerBatch) r) =>
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{engine},{model},{batch},{r.ImagesPerSecond:F1},{r.MsPerBatch:F1}"));

internal sealed record Args(int Threads, string[] Models, int[] Batches, int Size, int MinIterations, double MinSeconds, bool[] Fold)
{
    public static Args Parse(string[] args)
    {
        var map = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2) map[args[i].TrimStart('-')] = args[i + 1];
        string Get(string key, string fallback) => map.TryGetValue(key, out var v) ? v : fallback;
        return new Args(
            int.Parse(Get("threads", "2"), CultureInfo.InvariantCulture),
            Get("models", "X002,Y016").Split(','),
            Get("batches", "1,32").Split(',').Select(b => int.Parse(b, CultureInfo.InvariantCulture)).ToArray(),
            int.Parse(Get("size", "224"), CultureInfo.InvariantCulture),
            int.Parse(Get("min-iters", "5"), CultureInfo.InvariantCulture),
            double.Parse(Get("min-seconds", "5"), CultureInfo.InvariantCulture),
            Get("fold", "false,true").Split(',').Select(bool.Parse).ToArray());
    }
}
