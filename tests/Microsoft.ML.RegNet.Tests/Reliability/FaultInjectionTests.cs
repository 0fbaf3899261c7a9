using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.RegNet.Tests.Training;
using Microsoft.ML.RegNet.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Reliability;

/// <summary>Counts what the fault-injection tests did: a fault is survived (training continued to the same weights),
/// refused (a clear error, nothing saved was lost) or silent (accepted without error and wrong): the last must stay 0.</summary>
public sealed class FaultTally
{
    public int Survived, Refused, Silent;
    public List<string> Failures { get; } = new();
    public string Summary => $"faults: {Survived} survived, {Refused} refused, {Silent} silent";
}

/// <summary>
/// Kills training (SIGKILL, in a child process) at steps and inside checkpoint writes, then resumes and compares the final
/// weights bit for bit with an uninterrupted run; damages checkpoints byte by byte; fills and write-protects the disk.
/// </summary>
[TestClass]
public sealed partial class FaultInjectionTests
{
    public TestContext TestContext { get; set; } = null!;

    private static readonly FaultTally Tally = new();
    private static TinyImageData? _images;
    private static string _root = "";
    private static string _referenceHash = "";
    private static string _referenceRun = "";

    // 16 images, batch 4: 4 steps per epoch, 3 epochs, latest.ckpt every 3 steps (not after an epoch's last step) and
    // after every epoch, best.ckpt after improving validations. Each chain kills a run, resumes it in a new process that is
    // killed again at a later point (hits count from that process's start), and so on; its last process finishes.
    private static readonly (string Point, int Hit)[][] KillChains =
    {
        new[]
        {
            ("step", 4),                            // after step 4; latest is step 3
            ("checkpoint:header-written", 2),       // inside the epoch-end latest write at step 4 (best.ckpt was #1)
            ("epoch:validated", 2),                 // after validating epoch 1, before its latest write
            ("checkpoint:complete-before-rename", 1), // complete temporary file at step 8, not yet renamed
            ("step", 3),                            // right after the step-9 checkpoint
            ("checkpoint:renamed", 1),              // after a checkpoint at step 12 was renamed into place
        },
        new[]
        {
            ("step", 5),                            // first step after the epoch-end checkpoint
            ("checkpoint:model-written", 1),        // between the model and optimizer state of the step-6 write
            ("epoch:validated", 1),                 // after validating epoch 1
            ("step", 5),                            // after step 11
            ("step", 3),                            // after the last step, before the epoch's end
        },
    };
    [ClassInitialize]
    public static void TrainReference(TestContext _)
    {
        _images = new TinyImageData(perClass: 8, size: 32);
        _root = Directory.CreateTempSubdirectory("regnet-faults-").FullName;
        var reference = FaultHost.Run(_images.Folder, Path.Combine(_root, "reference"), Path.Combine(_root, "reference.weights"));
        Assert.AreEqual(0, reference.ExitCode, reference.ToString());
        _referenceHash = reference.WeightsHash!;
        _referenceRun = Directory.GetDirectories(Path.Combine(_root, "reference", "runs")).Single();
    }

    [ClassCleanup]
    public static void WriteSummary()
    {
        // The line docs/reliability.md quotes; also printed by every test of the suite.
        File.WriteAllText(Path.Combine(AppContext.BaseDirectory, "faults-summary.txt"), Tally.Summary + Environment.NewLine);
        Console.WriteLine(Tally.Summary);
        foreach (var mount in Mounts) Unmount(mount);
        _images?.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private void Report()
    {
        TestContext.WriteLine(Tally.Summary);
        Console.WriteLine(Tally.Summary);
    }

    [TestMethod]
    public void KilledTrainingResumesToTheUninterruptedWeights()
    {
        var failures = new List<string>();
        for (int c = 0; c < KillChains.Length; c++)
        {
            string workspace = Path.Combine(_root, $"kill-{c}");
            string? run = null;
            bool allKilled = true;
            foreach (var (point, hit) in KillChains[c])
            {
                string fault = $"{point}:{hit}";
                var killed = FaultHost.Run(_images!.Folder, workspace, Path.Combine(workspace, "unused.weights"), resume: run, fault: fault);
                if (!killed.Killed || killed.ExitCode == 0)
                {
                    failures.Add($"chain {c}, {fault}: the process was not killed there: {killed}");
                    allKilled = false;
                    break;
                }
                run ??= Directory.GetDirectories(Path.Combine(workspace, "runs")).Single();
            }
            if (!allKilled) continue;
            Assert.HasCount(1, Directory.GetDirectories(Path.Combine(workspace, "runs")), "every resume continues the same run folder");

            var resumed = FaultHost.Run(_images!.Folder, workspace, Path.Combine(workspace, "final.weights"), resume: run);
            string chain = $"chain {c} ({string.Join(", ", KillChains[c].Select(k => $"{k.Point}:{k.Hit}"))})";
            if (resumed.ExitCode != 0) { failures.Add($"{chain}: the last resume failed: {resumed}"); continue; }
            if (resumed.WeightsHash != _referenceHash)
            {
                Tally.Silent += KillChains[c].Length;
                failures.Add($"{chain}: resumed weights differ from the uninterrupted run ({resumed.WeightsHash} vs {_referenceHash})");
                continue;
            }
            var leftovers = Directory.EnumerateFiles(run!, "*.tmp", SearchOption.AllDirectories).ToList();
            if (leftovers.Count > 0) failures.Add($"{chain}: temporary files left after the resume: {string.Join(", ", leftovers)}");
            string? metrics = CompareMetrics(run!);
            if (metrics is not null) failures.Add($"{chain}: {metrics}");
            if (leftovers.Count == 0 && metrics is null) Tally.Survived += KillChains[c].Length;
        }
        Report();
        Assert.IsEmpty(failures, string.Join("\n\n", failures));
        Assert.IsGreaterThanOrEqualTo(10, KillChains.Sum(k => k.Length));
    }

    // Each step and validation is recorded once, in the uninterrupted run's order. Epoch averages of a resumed epoch
    // cover only its resumed part (and are absent when the checkpoint followed the epoch's last step), so they are only
    // checked for duplicates.
    private static string? CompareMetrics(string run)
    {
        static List<(string Phase, long Step)> Records(string folder) => File.ReadAllLines(Path.Combine(folder, "metrics.jsonl"))
            .Select(l => JsonNode.Parse(l)!).Select(n => ((string)n["phase"]!, (long)n["step"]!)).ToList();
        var expected = Records(_referenceRun).Where(r => r.Phase != nameof(MetricsPhase.TrainEpoch)).ToList();
        var all = Records(run);
        var duplicates = all.GroupBy(r => r).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (duplicates.Count > 0) return $"metrics.jsonl records these twice: {string.Join(", ", duplicates)}";
        var actual = all.Where(r => r.Phase != nameof(MetricsPhase.TrainEpoch)).ToList();
        if (!actual.SequenceEqual(expected)) return $"metrics.jsonl holds {string.Join(" ", actual)}, expected {string.Join(" ", expected)}";
        int csvRows = File.ReadAllLines(Path.Combine(run, "metrics.csv")).Length - 1;
        return csvRows == all.Count ? null : $"metrics.csv has {csvRows} rows, metrics.jsonl {all.Count}";
    }

    [TestMethod]
    public void DamagedCheckpointsAreRefusedNamingTheFileBeforeAnyWeightIsCopied()
    {
        string source = Path.Combine(_referenceRun, "checkpoints", RunDirectory.LatestCheckpointName);
        byte[] good = File.ReadAllBytes(source);
        string folder = Path.Combine(_root, "damaged", "checkpoints");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(_referenceRun, "checkpoints", RunDirectory.PreviousCheckpointName), Path.Combine(folder, RunDirectory.PreviousCheckpointName));
        string path = Path.Combine(folder, RunDirectory.LatestCheckpointName);
        int headerEnd = 8 + 2 + Encoding.UTF8.GetByteCount(JsonSerializerHeader(good));

        var damages = new List<(string What, byte[] Bytes)>();
        // Magic, version, header JSON, model tensors, optimizer state, the checksum itself and the last byte.
        var offsets = new List<int> { 0, 3, 4, 8, 9, 20, headerEnd / 2, headerEnd - 1, headerEnd + 4, good.Length - 33, good.Length - 32, good.Length - 1 };
        for (int k = 1; k <= 12; k++) offsets.Add((int)((long)good.Length * k / 13));
        foreach (int offset in offsets.Distinct())
        {
            var bytes = (byte[])good.Clone();
            bytes[offset] ^= 0x10;
            damages.Add(($"byte {offset} of {good.Length} flipped", bytes));
        }
        foreach (int length in new[] { 0, 3, 7, 8, 40, headerEnd, good.Length / 3, good.Length / 2, good.Length - 33, good.Length - 32, good.Length - 1 })
            damages.Add(($"truncated to {length} bytes", good[..length]));
        damages.Add(("one byte appended", good.Append((byte)0).ToArray()));
        damages.Add(("BatchInEpoch edited in the header", EditHeader(good, "\"BatchInEpoch\":0", "\"BatchInEpoch\":1")));
        damages.Add(("GlobalStep edited in the header", EditHeader(good, "\"GlobalStep\":12", "\"GlobalStep\":13")));

        var failures = new List<string>();
        using var model = new RegNetModel(RegNetSpec.FromName("X002"), numberOfClasses: 2);
        var before = Snapshot(model);
        foreach (var (what, bytes) in damages)
        {
            File.WriteAllBytes(path, bytes);
            try
            {
                Checkpoint.Load(path, model, optimizer: null);
                Tally.Silent++;
                failures.Add($"{what}: loaded without error");
            }
            catch (InvalidDataException e)
            {
                if (!e.Message.Contains(path, StringComparison.Ordinal)) failures.Add($"{what}: the message does not name the file: {e.Message}");
                else if (!Same(before, Snapshot(model))) failures.Add($"{what}: refused, but weights were copied into the model first");
                else Tally.Refused++;
            }
            catch (Exception e)
            {
                failures.Add($"{what}: {e.GetType().Name} instead of InvalidDataException: {e.Message}");
            }
        }
        Assert.IsGreaterThanOrEqualTo(20, offsets.Distinct().Count());
        Report();
        Assert.IsEmpty(failures, string.Join("\n", failures));

        // The damaged latest.ckpt's message points at previous.ckpt and the option that resumes from it.
        File.WriteAllBytes(path, damages[10].Bytes);
        var message = Assert.ThrowsExactly<InvalidDataException>(() => Checkpoint.ReadHeader(path)).Message;
        StringAssert.Contains(message, nameof(RegNetTrainer.Options.ResumeFromPreviousCheckpoint));
        // The intact file still loads: the refusals above are about the damage.
        File.WriteAllBytes(path, good);
        Assert.AreEqual(12L, Checkpoint.Load(path, model, optimizer: null).State.GlobalStep);
    }

    private static string JsonSerializerHeader(byte[] file)
    {
        using var reader = new BinaryReader(new MemoryStream(file, 8, file.Length - 8));
        return reader.ReadString();
    }

    private static byte[] EditHeader(byte[] file, string from, string to)
    {
        string text = Encoding.Latin1.GetString(file);
        Assert.AreEqual(from.Length, to.Length);
        StringAssert.Contains(text, from, "the header should hold " + from);
        return Encoding.Latin1.GetBytes(text.Replace(from, to));
    }

    private static Dictionary<string, Tensor> Snapshot(RegNetModel model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    private static bool Same(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b) =>
        a.All(kv => kv.Value.eq(b[kv.Key]).all().item<bool>());

    [TestMethod]
    public void AFullDiskStopsWithAClearErrorKeepsTheLastCheckpointAndResumesAfterwards()
    {
        string folder = Path.Combine(_root, "full");
        long checkpoint = new FileInfo(Path.Combine(_referenceRun, "checkpoints", RunDirectory.LatestCheckpointName)).Length;
        // Room for one checkpoint and the run's small files, not for the second one (written beside it, then renamed).
        MountTmpfs(folder, checkpoint * 3 / 2);
        var full = FaultHost.Run(_images!.Folder, folder, Path.Combine(_root, "full.weights"));
        Assert.AreEqual(3, full.ExitCode, full.ToString());
        StringAssert.Contains(full.Stderr, "Could not write the checkpoint");
        StringAssert.Contains(full.Stderr, "Free disk space");
        string run = Directory.GetDirectories(Path.Combine(folder, "runs")).Single();
        string latest = Path.Combine(run, "checkpoints", RunDirectory.LatestCheckpointName);
        Assert.AreEqual(3L, Checkpoint.ReadHeader(latest).State.GlobalStep, "the checkpoint before the full disk must stay intact");
        Assert.IsEmpty(Directory.GetFiles(run, "*.tmp", SearchOption.AllDirectories), "a failed write must not leave its temporary file");
        Tally.Refused++;

        Remount(folder, $"size={checkpoint * 8}");
        var resumed = FaultHost.Run(_images.Folder, folder, Path.Combine(_root, "full.weights"), resume: run);
        Assert.AreEqual(0, resumed.ExitCode, resumed.ToString());
        Assert.AreEqual(_referenceHash, resumed.WeightsHash);
        Report();
    }

    [TestMethod]
    public void AReadOnlyRunFolderIsRefusedClearlyAndLosesNothing()
    {
        string folder = Path.Combine(_root, "readonly");
        MountTmpfs(folder, 256L << 20);
        var killed = FaultHost.Run(_images!.Folder, folder, Path.Combine(_root, "ro.weights"), fault: "epoch:validated:2");
        Assert.IsTrue(killed.Killed, killed.ToString());
        string run = Directory.GetDirectories(Path.Combine(folder, "runs")).Single();
        var before = Directory.GetFiles(run, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);

        Remount(folder, "ro");
        var refused = FaultHost.Run(_images.Folder, folder, Path.Combine(_root, "ro.weights"), resume: run);
        Assert.AreEqual(3, refused.ExitCode, refused.ToString());
        StringAssert.Contains(refused.Stderr, "Read-only file system");
        StringAssert.Contains(refused.Stderr, run);
        foreach (var (file, bytes) in before) CollectionAssert.AreEqual(bytes, File.ReadAllBytes(file), file);
        Tally.Refused++;

        Remount(folder, "rw");
        var resumed = FaultHost.Run(_images.Folder, folder, Path.Combine(_root, "ro.weights"), resume: run);
        Assert.AreEqual(0, resumed.ExitCode, resumed.ToString());
        Assert.AreEqual(_referenceHash, resumed.WeightsHash);
        Report();
    }

    // Other fault suites (hostile weight files, …) join the summary by implementing this in another part of the class:
    // count each fault in the tally as survived, refused or silent, and add a failure for anything silent.
    static partial void RunMoreFaults(FaultTally tally, string workspace);

    [TestMethod]
    public void OtherFaultSuitesAreCountedInTheSummary()
    {
        int before = Tally.Refused + Tally.Silent;
        RunMoreFaults(Tally, _root);
        Report();
        Assert.AreEqual(0, Tally.Silent, $"{Tally.Summary}\n{string.Join("\n", Tally.Failures)}");
        Assert.IsGreaterThanOrEqualTo(15, Tally.Refused + Tally.Silent - before, "the hostile weight files are counted");
    }

    private static readonly List<string> Mounts = new();

    // A small tmpfs needs root (CI containers run as root); elsewhere the test is inconclusive, not passed.
    private static void MountTmpfs(string folder, long bytes)
    {
        Directory.CreateDirectory(folder);
        if (Environment.UserName != "root" && !IsRoot())
            Assert.Inconclusive($"Mounting a {bytes}-byte tmpfs at {folder} needs root; this fault was not run.");
        var (code, output) = Sh("mount", "-t", "tmpfs", "-o", $"size={bytes}", "tmpfs", folder);
        if (code != 0) Assert.Inconclusive($"mount -t tmpfs failed ({output.Trim()}); this fault was not run.");
        Mounts.Add(folder);
    }

    private static void Remount(string folder, string options)
    {
        var (code, output) = Sh("mount", "-o", $"remount,{options}", folder);
        Assert.AreEqual(0, code, output);
    }

    private static void Unmount(string folder) => Sh("umount", folder);

    private static bool IsRoot() => Sh("id", "-u").Output.Trim() == "0";

    private static (int Code, string Output) Sh(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(start)!;
            string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, output);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, e.Message);
        }
    }
}
