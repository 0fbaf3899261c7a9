using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.RegNet;
using Microsoft.ML.RegNet.Data.Mixing;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Distributed;
using Microsoft.ML.RegNet.Training;
using static TorchSharp.torch;

// Usage:
//   session <output prefix> [--batch B] [--steps N] [--off] [--no-broadcast] [--no-allreduce] [--same-shard] [--train-mode [--no-sync]]
//     Drives TrainingSession as the trainer does: a tiny RegNet (BatchNorm in eval mode; with --train-mode in training mode,
//     normalised by SyncBatchNorm across the ranks unless --no-sync, the negative control) whose initial weights differ per
//     rank, SGD with momentum and weight decay, N steps; each step's global batch is 2B random 32×32 images of which every
//     rank takes its RowShard. --off: no MPI at all, one process on the whole global batch (the reference). The negative
//     controls leave out one piece. Writes <prefix>.rank<r>: every parameter, then every gradient, float32.
//   fit <image folder> <workspace> <output prefix> [resume path]
//     RegNetTrainer.Fit with DataParallel = Auto on the folder's PNGs (label = name up to '_'); writes <prefix>.rank<r> (the
//     final state dict). REGNET_KILL=<rank>:<n> SIGKILLs that rank at its n-th training step; REGNET_CANCEL=<rank>:<n>
//     cancels that rank's CancellationToken (as Ctrl-C would) after its n-th step; REGNET_SYNC_BN=1 turns SyncBatchNorm on.
//   probe
//     Rank, size, a sum and an MPI error as an exception (used to check MPICH's handle table).
//   bench [architecture]
//     Times the gradient averaging alone (docs/data_parallel.md).
try
{
    return args.Length == 0 ? Usage() : args[0] switch
    {
        "session" => Session(args[1..]),
        "fit" => Fit(args[1..]),
        "bench" => Bench(args.Length > 1 ? args[1] : "X002"),
        "probe" => Probe(),
        _ => Usage(),
    };
}
catch (Exception e)
{
    Console.Error.WriteLine($"error: {e.GetType().Name}: {e.Message}");
    return 3;
}

static int Usage()
{
    Console.Error.WriteLine("usage: RegNetML.DataParallelHost session <output prefix> [options] | fit <image folder> <workspace> <output prefix> [resume]");
    return 2;
}

static int Session(string[] args)
{
    string output = args[0];
    int batch = Option(args, "--batch", 4), steps = Option(args, "--steps", 5);
    bool trainMode = args.Contains("--train-mode"), noSync = args.Contains("--no-sync");
    bool off = args.Contains("--off"), noBroadcast = args.Contains("--no-broadcast"), noAllreduce = args.Contains("--no-allreduce"), sameShard = args.Contains("--same-shard");
    set_num_threads(1);
    var parallel = off ? null : new DataParallel(MpiWorld.Get());
    int rank = parallel?.Rank ?? 0, size = parallel?.Size ?? 1;
    const int classes = 5;
    int global = batch * 2;
    var spec = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8, name: "dp-tiny");
    // Different initial weights on every rank: only the broadcast makes them equal (rank 0's are the reference's).
    using var generator = new Generator((ulong)(100 + rank));
    using var model = new RegNetModel(spec, classes, zeroInitLastBatchNorm: false, generator);
    // BatchNorm in eval mode, or in training mode with statistics over every rank's images: either way the step of
    // 2 ranks × B equals one of 1 × 2B.
    if (trainMode) model.train(); else model.eval();
    if (trainMode && parallel is not null && !noSync) model.SetTrainingNormalization(new SyncBatchNorm(parallel.World).Forward);
    var parameters = model.parameters().ToList();
    using var optimizer = optim.SGD(parameters, 0.05, momentum: 0.9);
    var session = new TrainingSession(model, optimizer, new WeightDecay(parameters, 5e-5, WeightDecaySemantics.CoupledL2),
        new LearningRateSchedule(0.05, 1, steps, LearningRateScheduleKind.Constant), new BatchMixer(new MixingOptions(), classes), seed: 1,
        frozen: Array.Empty<nn.Module>(), new TrainingState(0, 0, 0, double.NegativeInfinity, 0, spec.ToString(), classes));
    if (parallel is not null)
    {
        if (!noBroadcast)
        {
            parallel.BroadcastState(model);
            parallel.BroadcastOptimizerState(optimizer);
        }
        if (!noAllreduce) session.ReduceGradientsWith(() => parallel.AverageGradients(parameters));
    }
    var shard = new RowShard(sameShard ? 0 : rank, size, Pad: true);
    for (int step = 0; step < steps; step++)
    {
        using var data = new Generator((ulong)(1000 + step));
        using var images = randn(new long[] { global, 3, 32, 32 }, generator: data);
        using var labels = randint(classes, new long[] { global }, generator: data);
        long[] rows = shard.Rows(global, seed: 3, epoch: step, shuffle: true);
        using var index = tensor(rows);
        using var b = new ImageBatch(step, images.index_select(0, index), labels.index_select(0, index), rows, Array.Empty<BadRow>());
        var result = session.Step(b);
        Console.WriteLine($"rank {rank}/{size} step {step}: loss {result.Loss:F6} on rows {string.Join(',', rows)}");
    }
    using (var file = File.Create($"{output}.rank{rank}"))
    using (var writer = new BinaryWriter(file))
    {
        foreach (var p in parameters) foreach (float v in p.detach().reshape(-1).data<float>()) writer.Write(v);
        foreach (var p in parameters) foreach (float v in p.grad!.reshape(-1).data<float>()) writer.Write(v);
    }
    return 0;
}

static int Fit(string[] args)
{
    string images = args[0], workspace = args[1], output = args[2];
    string? resume = args.Length > 3 ? args[3] : null;
    int rank = DataParallelEnvironment.Rank;
    if (Environment.GetEnvironmentVariable("REGNET_KILL") is { Length: > 0 } kill && int.Parse(kill.Split(':')[0]) == rank)
    {
        int n = int.Parse(kill.Split(':')[1]), hits = 0;
        FaultPoints.Hook = point =>
        {
            if (point != "step" || ++hits != n) return;
            Console.Out.WriteLine($"kill: rank {rank} killing itself at step {n}");
            Console.Out.Flush();
            Process.GetCurrentProcess().Kill();
            Thread.Sleep(Timeout.Infinite);
        };
    }
    using var cancellation = new CancellationTokenSource();
    if (Environment.GetEnvironmentVariable("REGNET_CANCEL") is { Length: > 0 } cancel && int.Parse(cancel.Split(':')[0]) == rank)
    {
        int n = int.Parse(cancel.Split(':')[1]), hits = 0;
        FaultPoints.Hook = point =>
        {
            if (point != "step" || ++hits != n) return;
            Console.Out.WriteLine($"cancel: rank {rank} cancels after step {n}");
            cancellation.Cancel();
        };
    }
    var rows = Directory.GetFiles(images, "*.png").Order(StringComparer.Ordinal)
        .Select(f => new Row { ImagePath = f, Label = Path.GetFileName(f).Split('_')[0] }).ToList();
    var ml = new MLContext(seed: 1);
    ml.Log += (_, e) => { if (e.Message.Contains("Data-parallel over", StringComparison.Ordinal)) Console.WriteLine($"rank {rank}: {e.Message}"); };
    var data = ml.Data.LoadFromEnumerable(rows);
    var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.LoadRawImageBytes("Image", null, nameof(Row.ImagePath))).Fit(data).Transform(data);
    var options = new RegNetTrainer.Options
    {
        Spec = RegNetSpec.Create(depth: 4, w0: 8, wa: 8, wm: 2, groupWidth: 8, name: "dp-tiny"), ImageSize = 32, BatchSize = 4, MaxEpochs = 3,
        LearningRate = 2e-3, Seed = 7, WorkerThreads = 1, LogEveryNSteps = 1, CheckpointEveryNSteps = 2, WorkspacePath = workspace,
        ResumeFrom = resume, ValidationSet = keyed, DataParallel = DataParallelMode.Auto,
        SyncBatchNorm = Environment.GetEnvironmentVariable("REGNET_SYNC_BN") == "1", CancellationToken = cancellation.Token,
        MetricsCallback = m => Console.WriteLine($"rank {rank}: {m}"),
    };
    using var model = ml.MulticlassClassification.Trainers.RegNet(options).Fit(keyed);
    string path = $"{output}.rank{rank}";
    model.Model.save(path);
    Console.WriteLine($"rank {rank}: weights written to {path}; run folder {model.RunPath ?? "none"}");
    return 0;
}

// The binding against whichever library REGNET_MPI_LIBRARY names (the in-process tests cover the default one): world,
// a sum, and an error coming back as an exception.
static int Probe()
{
    var world = MpiWorld.Get();
    var values = new double[] { 1.5, world.Rank };
    world.AllreduceSum(values.AsSpan());
    Console.WriteLine($"probe: {world.Description}; sum {values[0]} {values[1]}");
    foreach (var (what, call) in new (string, Action)[]
             {
                 ("negative count", () => world.AllreduceSumUnchecked(new float[4], -1)),
                 ("root out of range", () => world.Broadcast(new byte[4].AsSpan(), root: world.Size + 3)),
             })
    {
        try
        {
            call();
            Console.WriteLine($"probe: no error for a {what}");
        }
        catch (MpiException e)
        {
            Console.WriteLine($"probe: {what}: error code {e.Code}: {e.Message}");
        }
    }
    return 0;
}

// The gradient allreduce alone, as AverageGradients does it for the architecture's parameters (after a barrier, so no
// rank waits for another): median and mean over 50 calls, printed by rank 0.
static int Bench(string architecture)
{
    set_num_threads(1);
    var parallel = new DataParallel(MpiWorld.Get());
    using var model = new RegNetModel(RegNetSpec.FromName(architecture), 10);
    var parameters = model.parameters().ToList();
    foreach (var p in parameters) p.grad = ones_like(p);
    var times = new List<double>();
    for (int i = 0; i < 55; i++)
    {
        parallel.World.Barrier();
        var clock = Stopwatch.StartNew();
        parallel.AverageGradients(parameters);
        if (i >= 5) times.Add(clock.Elapsed.TotalMilliseconds);
    }
    times.Sort();
    if (parallel.IsRoot)
        Console.WriteLine($"{architecture}: {parameters.Sum(p => p.numel()):N0} gradients, {parallel.Size} ranks: AverageGradients median {times[times.Count / 2]:F2} ms, mean {times.Average():F2} ms (allreduce and divide: after the first call the gradients are views of the flat buffer)");
    return 0;
}

static int Option(string[] args, string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
}

internal sealed class Row
{
    public string ImagePath { get; set; } = "";
    public string Label { get; set; } = "";
}
