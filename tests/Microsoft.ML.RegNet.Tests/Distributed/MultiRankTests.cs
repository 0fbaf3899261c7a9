using System.Diagnostics;
using System.Reflection;
using Microsoft.ML.RegNet.Tests.Training;

namespace Microsoft.ML.RegNet.Tests.Distributed;

/// <summary>
/// Data-parallel training across processes: tests/RegNetML.DataParallelHost run by <c>mpirun --allow-run-as-root
/// --oversubscribe -np 2</c> (TERM=dumb), compared with one process on the same samples. Inconclusive, with the reason,
/// only where mpirun is not installed (CI installs openmpi-bin).
/// </summary>
[TestClass]
public sealed class MultiRankTests
{
    private static string RepoRoot => typeof(MultiRankTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "RepoRoot").Value!;

    private static string HostPath => typeof(MultiRankTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "DataParallelHost").Value!;

    private string _root = null!;

    [TestInitialize]
    public void Create() => _root = Directory.CreateTempSubdirectory("regnet-mpi-").FullName;

    [TestCleanup]
    public void Remove()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    [TestMethod]
    public void TwoRanksOfBatchBTrainAsOneProcessOfBatch2BAndTheNegativeControlsDoNot()
    {
        var reference = Host(ranks: 0, "session", Out("reference"), "--off");
        Assert.AreEqual(0, reference.ExitCode, reference.ToString());
        var (refParams, refGrads) = Read(Out("reference") + ".rank0");

        var run = Host(ranks: 2, "session", Out("dp"));
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        byte[] rank0 = File.ReadAllBytes(Out("dp") + ".rank0"), rank1 = File.ReadAllBytes(Out("dp") + ".rank1");
        CollectionAssert.AreEqual(rank0, rank1, "both ranks must hold bitwise identical parameters and gradients");
        var (p, g) = Read(Out("dp") + ".rank0");
        double dParams = MaxAbsDifference(refParams, p), dGrads = MaxAbsDifference(refGrads, g);
        Console.WriteLine($"2 ranks × 4 vs 1 × 8 after 5 SGD steps: parameters {dParams:E2}, gradients {dGrads:E2} apart; ranks bitwise identical");
        Assert.IsTrue(dParams <= 1e-6 && dGrads <= 1e-6, $"parameters {dParams:E2}, gradients {dGrads:E2} from the single-process reference (limit 1e-6)");

        foreach (var control in new[] { "--no-broadcast", "--no-allreduce", "--same-shard" })
        {
            var bad = Host(ranks: 2, "session", Out(control), control);
            Assert.AreEqual(0, bad.ExitCode, bad.ToString());
            var (cp, cg) = Read(Out(control) + ".rank0");
            double d = Math.Max(MaxAbsDifference(refParams, cp), MaxAbsDifference(refGrads, cg));
            Console.WriteLine($"negative control {control}: {d:E2} from the reference");
            Assert.IsGreaterThan(1e-3, d, $"{control} must make the comparison fail, but it is only {d:E2} from the reference");
        }
    }

    [TestMethod]
    public void WithSyncBatchNormTwoRanksInTrainingModeTrainAsOneProcessAndWithoutItTheyDoNot()
    {
        // BatchNorm in training mode: each layer's batch statistics are those of the whole global batch only when the
        // ranks share them, so 2 ranks × 4 equal 1 process × 8 with SyncBatchNorm and not with per-rank statistics.
        var reference = Host(ranks: 0, "session", Out("train-reference"), "--off", "--train-mode");
        Assert.AreEqual(0, reference.ExitCode, reference.ToString());
        var (refParams, refGrads) = Read(Out("train-reference") + ".rank0");

        var run = Host(ranks: 2, "session", Out("train-sync"), "--train-mode");
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        byte[] rank0 = File.ReadAllBytes(Out("train-sync") + ".rank0"), rank1 = File.ReadAllBytes(Out("train-sync") + ".rank1");
        CollectionAssert.AreEqual(rank0, rank1, "both ranks must hold bitwise identical parameters and gradients");
        var (p, g) = Read(Out("train-sync") + ".rank0");
        double dParams = MaxAbsDifference(refParams, p), dGrads = MaxAbsDifference(refGrads, g);
        Console.WriteLine($"SyncBatchNorm, 2 ranks × 4 vs 1 × 8 in training mode after 5 SGD steps: parameters {dParams:E2}, gradients {dGrads:E2} apart");
        Assert.IsTrue(dParams <= 1e-6 && dGrads <= 1e-6, $"parameters {dParams:E2}, gradients {dGrads:E2} from the single-process reference (limit 1e-6)");

        var control = Host(ranks: 2, "session", Out("train-nosync"), "--train-mode", "--no-sync");
        Assert.AreEqual(0, control.ExitCode, control.ToString());
        var (cp, cg) = Read(Out("train-nosync") + ".rank0");
        double d = Math.Max(MaxAbsDifference(refParams, cp), MaxAbsDifference(refGrads, cg));
        Console.WriteLine($"negative control, per-rank BatchNorm statistics: {d:E2} from the reference");
        Assert.IsGreaterThan(1e-3, d, $"per-rank statistics must make the comparison fail, but they are only {d:E2} from the reference");
    }

    [TestMethod]
    public void TwoRanksOnTwoHostsOverTcpTrainAsOneProcess()
    {
        // Multi-node without a second machine: tests/multihost/two_namespaces.sh puts each rank in its own network
        // namespace (a veth pair between them), Open MPI starts the remote one through an `ip netns exec` rsh agent, and
        // the ranks talk TCP only (no shared memory), as on two machines.
        if (FindMpirun() is null) Assert.Inconclusive("mpirun is not installed (Debian: apt-get install openmpi-bin).");
        if (!Environment.IsPrivilegedProcess) Assert.Inconclusive("Creating network namespaces needs root.");
        string script = Path.Combine(RepoRoot, "tests", "multihost", "two_namespaces.sh");
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { script, HostPath, Path.Combine(_root, "two-hosts") }) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(240_000))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("two_namespaces.sh did not finish in 4 minutes");
        }
        var result = new Result(process.ExitCode, stdout, stderr.Result);
        if (result.ExitCode != 0 && (result.Stderr.Contains("Operation not permitted") || result.Stderr.Contains("command not found")))
            Assert.Inconclusive($"This machine cannot make network namespaces: {result}");
        Assert.AreEqual(0, result.ExitCode, result.ToString());
        StringAssert.Contains(result.Stdout, "rank 0 in rgn1-", "rank 0 must run in the first namespace");
        StringAssert.Contains(result.Stdout, "rank 1 in rgn2-", "rank 1 must run in the second namespace");

        string prefix = Path.Combine(_root, "two-hosts");
        CollectionAssert.AreEqual(File.ReadAllBytes(Path.Combine(prefix, "dp.rank0")), File.ReadAllBytes(Path.Combine(prefix, "dp.rank1")),
            "both hosts must hold bitwise identical parameters and gradients");
        var (refParams, refGrads) = Read(Path.Combine(prefix, "ref.rank0"));
        var (p, g) = Read(Path.Combine(prefix, "dp.rank0"));
        double dParams = MaxAbsDifference(refParams, p), dGrads = MaxAbsDifference(refGrads, g);
        Console.WriteLine($"two namespaces over TCP: parameters {dParams:E2}, gradients {dGrads:E2} from one process");
        Assert.IsTrue(dParams <= 1e-6 && dGrads <= 1e-6, $"parameters {dParams:E2}, gradients {dGrads:E2} from the single-process reference (limit 1e-6)");
    }

    [TestMethod]
    public void FitUnderMpirunGivesEveryRankTheSameModelAndOnlyRankZeroWrites()
    {
        using var images = new TinyImageData(perClass: 6, size: 32);
        string workspace = Path.Combine(_root, "ws");
        var run = Host(ranks: 2, "fit", images.Folder, workspace, Out("fit"));
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        CollectionAssert.AreEqual(File.ReadAllBytes(Out("fit") + ".rank0"), File.ReadAllBytes(Out("fit") + ".rank1"), "ranks end with different weights");
        Assert.HasCount(1, Directory.GetDirectories(Path.Combine(workspace, "runs")), "only rank 0 writes a run folder");
        StringAssert.Contains(run.Stdout, "rank 0: TrainEpoch");
        Assert.IsFalse(run.Stdout.Contains("rank 1: Train", StringComparison.Ordinal), "only rank 0 reports metrics");
        StringAssert.Contains(run.Stdout, "rank 1: weights written");
    }

    [TestMethod]
    public void FitWithSyncBatchNormGivesEveryRankTheSameModel()
    {
        using var images = new TinyImageData(perClass: 6, size: 32);
        var run = Host(2, "fit", images.Folder, Path.Combine(_root, "ws"), Out("fit-sync"), ("REGNET_SYNC_BN", "1"));
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        CollectionAssert.AreEqual(File.ReadAllBytes(Out("fit-sync") + ".rank0"), File.ReadAllBytes(Out("fit-sync") + ".rank1"), "ranks end with different weights");
        StringAssert.Contains(run.Stdout, "SyncBatchNorm statistics", "the trainer reports the statistics allreduce when SyncBatchNorm is on");
    }

    [TestMethod]
    public void CancellingOneRankStopsEveryRankAfterTheSameStepWithACheckpoint()
    {
        // As Ctrl-C reaching the ranks at different steps: only rank 1's token is cancelled, after its third step. Without
        // the agreement rank 1 would return while rank 0 waits in the next allreduce for ever.
        using var images = new TinyImageData(perClass: 6, size: 32);
        string workspace = Path.Combine(_root, "ws");
        var run = Host(2, "fit", images.Folder, workspace, Out("cancel"), ("REGNET_CANCEL", "1:3"));
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Stdout, "cancel: rank 1 cancels after step 3");
        CollectionAssert.AreEqual(File.ReadAllBytes(Out("cancel") + ".rank0"), File.ReadAllBytes(Out("cancel") + ".rank1"), "ranks stopped at different steps");
        string runFolder = Directory.GetDirectories(Path.Combine(workspace, "runs")).Single();
        Assert.IsTrue(File.Exists(Path.Combine(runFolder, "checkpoints", "latest.ckpt")), "the cancelled run leaves a checkpoint to resume from");
        // Every step is reported (LogEveryNSteps = 1): the last one is step 3 on both ranks' behalf.
        long last = System.Text.RegularExpressions.Regex.Matches(run.Stdout, @"rank 0: Train\w+ epoch \d+ step (\d+):").Max(m => long.Parse(m.Groups[1].Value));
        Assert.AreEqual(3L, last, "training must stop after the step the cancellation followed");
    }

    [TestMethod]
    public void AnErrorOnOneRankAbortsTheJobWithItsMessage()
    {
        using var images = new TinyImageData(perClass: 2, size: 32);
        var run = Host(ranks: 2, "fit", images.Folder, Path.Combine(_root, "ws"), Out("abort"), Path.Combine(_root, "no-such-run"));
        Assert.AreNotEqual(0, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Stderr, "failed on rank 0 of 2; aborting every rank");
        StringAssert.Contains(run.Stderr, "no-such-run");
    }

    [TestMethod]
    public void KillingOneRankStopsTheJobAndOneProcessResumesFromTheLastCheckpoint()
    {
        using var images = new TinyImageData(perClass: 6, size: 32);
        string workspace = Path.Combine(_root, "ws");
        var killed = Host(ranks: 2, "fit", images.Folder, workspace, Out("killed"), environment: ("REGNET_KILL", "1:3"));
        Assert.AreNotEqual(0, killed.ExitCode, killed.ToString());
        StringAssert.Contains(killed.Stdout, "kill: rank 1 killing itself at step 3");
        string all = killed.Stdout + killed.Stderr;
        Assert.IsTrue(all.Contains("rank 1", StringComparison.Ordinal) && all.Contains("signal 9", StringComparison.Ordinal),
            $"mpirun must say that rank 1 was killed:\n{killed}");
        Assert.IsFalse(File.Exists(Out("killed") + ".rank0"), "rank 0 must not finish on its own");

        string run = Directory.GetDirectories(Path.Combine(workspace, "runs")).Single();
        var resumed = Host(ranks: 0, "fit", images.Folder, workspace, Out("resumed"), run);
        Assert.AreEqual(0, resumed.ExitCode, resumed.ToString());
        Assert.IsTrue(File.Exists(Out("resumed") + ".rank0"));
        StringAssert.Contains(resumed.Stdout, "rank 0: TrainEpoch");
    }

    [TestMethod]
    public void TheMpichHandleTableWorksInASingletonProcess()
    {
        // MPICH's handles are integers, not Open MPI's addresses; CI installs libmpich12 next to Open MPI to check the table.
        if (!System.Runtime.InteropServices.NativeLibrary.TryLoad("libmpich.so.12", out var handle))
            Assert.Inconclusive("libmpich.so.12 is not installed (Debian: apt-get install libmpich12); MPICH's handle table is not checked here.");
        System.Runtime.InteropServices.NativeLibrary.Free(handle);
        var env = ("REGNET_MPI_LIBRARY", "libmpich.so.12");
        var probe = Host(0, ["probe"], env);
        Assert.AreEqual(0, probe.ExitCode, probe.ToString());
        StringAssert.Contains(probe.Stdout, "probe: libmpich.so.12 (Mpich), rank 0 of 1; sum 1.5 0");
        StringAssert.Contains(probe.Stdout, "root out of range: error code");
        StringAssert.Contains(probe.Stdout, "Invalid root");

        var reference = Host(0, ["session", Out("reference"), "--off"], null);
        var mpich = Host(0, ["session", Out("mpich")], env);
        Assert.AreEqual(0, mpich.ExitCode, mpich.ToString());
        CollectionAssert.AreEqual(File.ReadAllBytes(Out("reference") + ".rank0"), File.ReadAllBytes(Out("mpich") + ".rank0"),
            "one MPICH rank (broadcast, allreduce of one) must train exactly as no MPI at all");
    }

    private string Out(string name) => Path.Combine(_root, name.TrimStart('-'));

    private sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
    }

    // ranks 0: the host without mpirun.
    private static Result Host(int ranks, params string[] args) => Host(ranks, args, null);

    private static Result Host(int ranks, string mode, string a, string b, string c, (string, string) environment) =>
        Host(ranks, [mode, a, b, c], environment);

    private static Result Host(int ranks, string[] args, (string Name, string Value)? environment)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        ProcessStartInfo start;
        if (ranks == 0)
        {
            start = new ProcessStartInfo(dotnet);
        }
        else
        {
            string mpirun = FindMpirun() ?? throw new AssertInconclusiveException("mpirun is not installed (Debian: apt-get install openmpi-bin); the multi-rank tests need it.");
            start = new ProcessStartInfo(mpirun);
            foreach (var arg in new[] { "--allow-run-as-root", "--oversubscribe", "-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture) })
                start.ArgumentList.Add(arg);
            if (environment is { } e) { start.ArgumentList.Add("-x"); start.ArgumentList.Add(e.Name); }
            start.ArgumentList.Add(dotnet);
        }
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(HostPath);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.Environment["TERM"] = "dumb";
        if (environment is { } env) start.Environment[env.Name] = env.Value;
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(240_000))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{string.Join(' ', start.ArgumentList)} did not finish in 4 minutes");
        }
        return new Result(process.ExitCode, stdout, stderr.Result);
    }

    private static string? FindMpirun() => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
        .Select(dir => Path.Combine(dir, "mpirun")).FirstOrDefault(File.Exists);

    private static (float[] Parameters, float[] Gradients) Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var all = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, all, 0, bytes.Length);
        return (all[..(all.Length / 2)], all[(all.Length / 2)..]);
    }

    private static double MaxAbsDifference(float[] a, float[] b)
    {
        Assert.HasCount(a.Length, b);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        return max;
    }
}
