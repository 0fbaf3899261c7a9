// One training step of a RegNet timed in its three parts (forward with the loss, backward, AdamW), the counterpart of
// benchmarks/pytorch_training_step.py, so that libtorch 2.10 under TorchSharp and PyTorch can be compared on the same
// model, batch and threads in the same minute (docs/benchmarks.md, "One training step, engine against engine").
//   dotnet run -c Release --project benchmarks/RegNetML.Benchmarks -- --training-step [--model X002] [--size 64] [--batch 32] [--threads 2] [--steps 25] [--channels-last] [--torchsharp-adamw]
// AdamW (lr 1e-3, decoupled decay 0.01 on every parameter, PyTorch's defaults) is the trainer's: Adam over flat buffers
// (FlatAdamStep) with the decay of WeightDecay; --torchsharp-adamw takes TorchSharp's AdamW, which steps parameter by parameter.
// --channels-last feeds the batch with N×H×W×C strides (PyTorch's torch.channels_last). It is not what the trainer does:
// with libtorch 2.10 on an AVX-512 CPU, --model tiny --batch 3 --channels-last (or batch 5, 7) aborts the process with glibc's
// "double free or corruption" in oneDNN's weight-gradient kernel (the README's oneDNN section), which is why the trainer
// stays channels-first.
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.RegNet;
using Microsoft.ML.RegNet.Training;
using TorchSharp;
using static TorchSharp.torch;

internal static class TrainingStepBenchmark
{
    public static void Run(string model, int size, int batch, int threads, int steps, bool channelsLast, bool torchSharpAdamW)
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
        var parameters = network.parameters().ToList();
        using var optimizer = torchSharpAdamW ? (TorchSharp.Modules.OptimizerHelper)optim.AdamW(parameters, 1e-3) : optim.Adam(parameters, 1e-3);
        using var flat = torchSharpAdamW ? null : FlatAdamStep.TryCreate(optimizer, new WeightDecay(parameters, 0.01, WeightDecaySemantics.Decoupled))
            ?? throw new InvalidOperationException("The flat Adam step did not apply.");
        var times = new List<double[]>();
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            if (flat is null) optimizer.zero_grad(); else flat.ZeroGradients();
            var loss = nn.functional.cross_entropy(network.call(images), labels);
            double forward = clock.Elapsed.TotalMilliseconds;
            loss.backward();
            double backward = clock.Elapsed.TotalMilliseconds;
            if (flat is null) optimizer.step(); else flat.Step();
            double total = clock.Elapsed.TotalMilliseconds;
            times.Add(new[] { forward, backward - forward, total - backward, total });
        }
        // The first 5 steps create oneDNN's kernels; the median of the rest.
        double Median(int part) => times.Skip(5).Select(t => t[part]).Order().ElementAt((times.Count - 5) / 2);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"torchsharp,{model},{size},{batch},{threads},{(channelsLast ? "channels-last" : "channels-first")}{(torchSharpAdamW ? " torchsharp-adamw" : " flat-adamw")},{Median(0):F1},{Median(1):F1},{Median(2):F1},{Median(3):F1}"));
    }
}
