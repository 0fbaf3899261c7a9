using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.RegNet.Distributed;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Distributed;

/// <summary>The MPI binding in this process, which no launcher started: MPI's singleton mode, rank 0 of 1. CI installs
/// Open MPI (.ci/run); without it these tests are inconclusive with the reason.</summary>
[TestClass]
public sealed class MpiBindingTests
{
    private static MpiWorld World()
    {
        if (MpiLibrary.TryLoad(out string? problem) is null) Assert.Inconclusive($"MPI is not installed here: {problem}");
        return MpiWorld.Get();
    }

    [TestMethod]
    public void WithoutALauncherThisProcessIsRankZeroOfOne()
    {
        var world = World();
        Assert.AreEqual((0, 1), (world.Rank, world.Size), world.Description);
        Assert.IsTrue(world.IsRoot);
        Assert.IsGreaterThanOrEqualTo(MpiLibrary.ThreadSerialized, world.ThreadLevel, "thread level");
        Assert.AreSame(world, MpiWorld.Get(), "MPI is initialised once per process");
    }

    [TestMethod]
    public void AllreduceOverOneRankIsTheIdentityForEveryElementType()
    {
        var world = World();
        float[] f = [1.5f, -2.25f, float.MaxValue, 0];
        double[] d = [Math.PI, -1e300, 0];
        long[] l = [long.MaxValue, -7, 0];
        float[] f0 = f.ToArray(); double[] d0 = d.ToArray(); long[] l0 = l.ToArray();
        world.AllreduceSum(f.AsSpan());
        world.AllreduceSum(d.AsSpan());
        world.AllreduceSum(l.AsSpan());
        CollectionAssert.AreEqual(f0, f);
        CollectionAssert.AreEqual(d0, d);
        CollectionAssert.AreEqual(l0, l);
    }

    [TestMethod]
    public void TensorsAreReducedAndBroadcastInPlace()
    {
        var parallel = new DataParallel(World());
        using var t = arange(0, 10, dtype: ScalarType.Float32);
        using var before = t.clone();
        parallel.Broadcast([t]);
        Assert.IsTrue(t.eq(before).all().item<bool>(), "broadcast from rank 0 of 1 keeps the tensor");
        using var weight = nn.Parameter(ones(3, 2));
        using var bias = nn.Parameter(ones(4));
        weight.grad = full(new long[] { 3, 2 }, 2f);
        parallel.AverageGradients([weight, bias]);
        Assert.IsTrue(weight.grad!.eq(2f).all().item<bool>(), "the mean over one rank is the gradient itself");
        Assert.IsTrue(bias.grad!.eq(0f).all().item<bool>(), "a missing gradient is sent as zeros");
        Assert.AreEqual(1L, parallel.GradientReductions);
    }

    [TestMethod]
    public void AfterTheFirstStepGradientsAccumulateInTheFlatBufferWithoutCopies()
    {
        // Steps as the trainer takes them (the optimizer's zero_grad, backward, averaging): over one rank the average is the
        // gradient itself, so each step's averaged gradients must equal that step's own, while they are packed only once.
        var parallel = new DataParallel(World());
        using var generator = new Generator(3);
        using var model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3));
        var parameters = model.parameters().ToList();
        using var optimizer = optim.AdamW(parameters, 0.01);
        for (int step = 0; step < 3; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = model.call(randn(new long[] { 8, 5 }, generator: generator)).square().mean();
            loss.backward();
            var own = parameters.Select(p => p.grad!.clone()).ToList();
            parallel.AverageGradients(parameters);
            for (int i = 0; i < parameters.Count; i++)
                Assert.IsTrue(parameters[i].grad!.eq(own[i]).all().item<bool>(), $"step {step}, parameter {i}: the averaged gradient is not this step's gradient");
            Assert.IsTrue(own.Any(g => g.abs().sum().item<float>() > 0), "gradients must not be zero for the comparison to mean something");
            optimizer.step();
        }
        Assert.AreEqual(1L, parallel.GradientPacks, "gradients copied into the flat buffer more than once");
        Assert.AreEqual(3L, parallel.GradientReductions);
    }

    [TestMethod]
    public void AnMpiErrorBecomesAnExceptionWithMpisOwnMessage()
    {
        var world = World();
        var e = Assert.ThrowsExactly<MpiException>(() => world.AllreduceSumUnchecked(new float[4], -1));
        StringAssert.Contains(e.Message, "MPI_Allreduce");
        Assert.AreNotEqual(0, e.Code);
        Assert.IsTrue(e.Message.Contains("count", StringComparison.OrdinalIgnoreCase), e.Message);
        // The world is still usable after an error was returned.
        var ok = new float[] { 3 };
        world.AllreduceSum(ok.AsSpan());
        Assert.AreEqual(3f, ok[0]);
    }

    [TestMethod]
    public void DotNetStillTurnsANullDereferenceIntoAnExceptionAfterMpiIsInitialised()
    {
        // Open MPI installs SIGSEGV handlers unless told not to; .NET's NullReferenceException relies on that signal.
        World();
        object? nothing = null;
        Assert.ThrowsExactly<NullReferenceException>(() => nothing!.GetHashCode());
    }

    [TestMethod]
    public void AMissingLibraryIsAClearErrorNamingWhatToInstall()
    {
        string? old = Environment.GetEnvironmentVariable("REGNET_MPI_LIBRARY");
        try
        {
            Environment.SetEnvironmentVariable("REGNET_MPI_LIBRARY", "/nonexistent/libmpi.so.40");
            Assert.IsNull(MpiLibrary.TryLoad(out string? problem));
            StringAssert.Contains(problem, "/nonexistent/libmpi.so.40");
            StringAssert.Contains(problem, "openmpi-bin");
        }
        finally
        {
            Environment.SetEnvironmentVariable("REGNET_MPI_LIBRARY", old);
        }
    }

    [TestMethod]
    public void AutoAndOffTrainInOneProcessWithoutALauncher()
    {
        if (DataParallelEnvironment.LaunchedWorldSize > 1) Assert.Inconclusive("the tests themselves run under mpirun");
        Assert.IsNull(DataParallel.Start(DataParallelMode.Auto));
        Assert.IsNull(DataParallel.Start(DataParallelMode.Off));
        Assert.AreEqual(0, DataParallelEnvironment.Rank);
        Assert.IsTrue(DataParallelEnvironment.IsRoot);
    }
}

[TestClass]
public sealed class RowShardTests
{
    [TestMethod]
    [DataRow(10L, 2)]
    [DataRow(11L, 2)]
    [DataRow(7L, 3)]
    [DataRow(1L, 2)]
    public void PaddedShardsAreEqualInSizeAndTogetherHoldEveryRow(long rows, int ranks)
    {
        var shards = Enumerable.Range(0, ranks).Select(r => new RowShard(r, ranks, Pad: true).Rows(rows, seed: 5, epoch: 2, shuffle: true)).ToList();
        long each = (rows + ranks - 1) / ranks;
        foreach (var shard in shards)
        {
            Assert.HasCount((int)each, shard, "every rank takes the same number of steps");
            Assert.AreEqual(shard.Length, shard.Distinct().Count(), "no rank reads a row twice");
        }
        CollectionAssert.AreEquivalent(Enumerable.Range(0, (int)rows).Select(i => (long)i).ToArray(), shards.SelectMany(s => s).Distinct().ToArray());
        Assert.AreEqual(each * ranks - rows, shards.Sum(s => s.Length) - rows, "padding repeats only as many rows as needed");
    }

    [TestMethod]
    public void UnpaddedShardsPartitionTheRowsAndTheOrderFollowsSeedAndEpoch()
    {
        var a = Enumerable.Range(0, 3).Select(r => new RowShard(r, 3, Pad: false).Rows(20, 1, 0, shuffle: true)).ToList();
        CollectionAssert.AreEqual(Enumerable.Range(0, 20).Select(i => (long)i).ToArray(), a.SelectMany(s => s).Order().ToArray());
        var nextEpoch = new RowShard(0, 3, false).Rows(20, 1, 1, shuffle: true);
        CollectionAssert.AreNotEqual(a[0], nextEpoch, "a new epoch deals the rows anew");
        CollectionAssert.AreEqual(a[0], new RowShard(0, 3, false).Rows(20, 1, 0, shuffle: true), "deterministic per (seed, epoch)");
        CollectionAssert.AreEqual(new long[] { 1, 4, 7, 10, 13, 16, 19 }, new RowShard(1, 3, false).Rows(20, 1, 0, shuffle: false));
    }

    private sealed class Row
    {
        [VectorType]
        public byte[] Image { get; set; } = [];
        public float LabelValue { get; set; }
    }

    [TestMethod]
    public void ARankDecodesOnlyItsOwnRows()
    {
        var ml = new MLContext(1);
        var raw = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 10).Select(i => new Row
        {
            Image = Data.TestImages.Encode(Data.TestImages.Pattern(16, 16, i), SkiaSharp.SKEncodedImageFormat.Png), LabelValue = i % 2,
        }).ToList());
        var data = ml.Transforms.Conversion.MapValueToKey("Label", "LabelValue").Fit(raw).Transform(raw);
        var seen = new List<long>();
        foreach (int rank in new[] { 0, 1 })
        {
            var pipeline = new ImageBatchPipeline(new ImageBatchPipelineOptions
            {
                BatchSize = 2, ImageSize = 16, Seed = 3, WorkerThreads = 1, Shuffle = true, ShufflePoolSize = 4, Shard = new RowShard(rank, 2, Pad: true),
            });
            var rows = new List<long>();
            foreach (var batch in pipeline.Read(data, epoch: 1)) using (batch) rows.AddRange(batch.RowIndices);
            Assert.HasCount(5, rows);
            Assert.AreEqual(5L, pipeline.ImagesRead, "the other rank's rows are neither read nor decoded");
            CollectionAssert.AreEquivalent(new RowShard(rank, 2, true).Rows(10, 3, 1, true), rows);
            // Resuming after the first batch skips exactly that batch's rows of this rank.
            var resumed = new ImageBatchPipeline(pipeline.Options);
            var rest = resumed.Read(data, epoch: 1, skipBatches: 1).SelectMany(b => { using (b) return b.RowIndices; }).ToList();
            CollectionAssert.AreEqual(rows.Skip(2).ToList(), rest);
            seen.AddRange(rows);
        }
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 10).Select(i => (long)i).ToArray(), seen);
    }
}
