// One training step of a RegNet timed in its three parts (forward with the loss, backward, AdamW), the counterpart of
// benchmarks/pytorch_training_step.py, so that libtorch 2.10 under TorchSharp and PyTorch can be compared on the same
// model, batch and threads in the same minute (docs/benchmarks.md, "One training step, engine against engine").
//   dotnet run -c Release --project benchmarks/RegNetML.Benchmarks -- --training-step [--model X002] [--size 64] [--batch 32] [--threads 2] [--steps 25] [--channels-last]
// --channels-last feeds the batch with N×H×W×C strides (PyTorch's torch.channels_last). It is not what the trainer does:
// with libtorch 2.10 on an AVX-512 CPU, --model tiny --batch 3 --channels-last (or batch 5, 7) aborts the process with glibc's
// "double free or corruption" in oneDNN's weight-gradient kernel (the README's oneDNN section), which is why the trainer
// stays channels-first.
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.RegNet;
using TorchSharp;
using static TorchSharp.torch;

internal static class TrainingStepBenchmark
{
    public static void Run(string model, int size, int batch, int threads, int steps, bool channelsLast)
    {
        TorchRuntime.Configure();
        torch.set_num_threads(threads);
        var images = randn(new long[] { batch, 3, size, size }, generator: new Generator(1));
        if (channelsLast) images = images.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        var labels = randint(0, 5, new long[] { batch }, generator: new Generator(2));
        // "tiny": the 3-stage RegNet of the training tests (widths 8, 16, 32).
        var spec = model == "tiny" ? RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8, name: "tiny") : RegNetSpec.FromName(model);
        using var network = new RegNetModel(spec, 5, generator: new Generator(3));
        network.train();
        using var optimizer = optim.AdamW(network.parameters(), 1e-3);
        var times = new List<double[]>();
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(network.call(images), labels);
            double forward = clock.Elapsed.TotalMilliseconds;
            loss.backward();
            double backward = clock.Elapsed.TotalMilliseconds;
            optimizer.step();
            double total = clock.Elapsed.TotalMilliseconds;
            times.Add(new[] { forward, backward - forward, total - backward, total });
        }
        // The first 5 steps create oneDNN's kernels; the median of the rest.
        double Median(int part) => times.Skip(5).Select(t => t[part]).Order().ElementAt((times.Count - 5) / 2);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"torchsharp,{model},{size},{batch},{threads},{(channelsLast ? "channels-last" : "channels-first")},{Median(0):F1},{Median(1):F1},{Median(2):F1},{Median(3):F1}"));
    }
}
