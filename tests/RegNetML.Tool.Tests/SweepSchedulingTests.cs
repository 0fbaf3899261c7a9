using RegNetML.Tool.Sweeps;

namespace RegNetML.Tool.Tests;

/// <summary>Successive halving and random search with a fake trainer: which trials train at which budget, what a
/// resume repeats, and the search space syntax.</summary>
[TestClass]
public sealed class SweepSchedulingTests
{
    private static SweepDefinition Halving(int trials = 8, int eta = 2, int max = 4) =>
        new("halving", trials, 1, max, eta, 1, true, new[] { "lr=log:0.0001..0.1" }, new[] { "data" });

    private static SweepState NewState(string folder, SweepDefinition definition) =>
        SweepState.OpenOrCreate(Path.Combine(folder, "sweep.json"), definition, () => Enumerable.Range(0, definition.Trials)
            .Select(id => new Trial { Id = id, Parameters = new(StringComparer.Ordinal) { ["lr"] = id } }).ToList());

    // A trial's score grows with its id and with its budget, except trial 5, which is best at one epoch and worst after.
    private static TrialResult Fake(Trial trial, int epochs, List<(int Id, int Epochs)> calls)
    {
        calls.Add((trial.Id, epochs));
        double top1 = trial.Id == 5 ? (epochs == 1 ? 0.99 : 0.1) : 0.1 * trial.Id / 8 + 0.1 * epochs;
        return new TrialResult { Epochs = epochs, Status = "finished", Run = $"run-{trial.Id}-{epochs}", Top1 = top1, Loss = 1 - top1 };
    }

    [TestMethod]
    public void RungsFollowHyperbandsBudgets()
    {
        CollectionAssert.AreEqual(new[] { 1, 2, 4 }, SweepScheduler.Rungs(Halving()).ToArray());
        CollectionAssert.AreEqual(new[] { 1, 3, 10 }, SweepScheduler.Rungs(Halving(eta: 3, max: 10)).ToArray());
        CollectionAssert.AreEqual(new[] { 10 }, SweepScheduler.Rungs(Halving(max: 10) with { Method = "random" }).ToArray());
    }

    [TestMethod]
    public void EightTrialsHalveToFourThenTwoAndTheBestOfTheLastRungWins()
    {
        string folder = Directory.CreateTempSubdirectory("regnet-sweep-").FullName;
        try
        {
            var calls = new List<(int Id, int Epochs)>();
            var best = new SweepScheduler(NewState(folder, Halving()), (t, e, _) => Fake(t, e, calls), (_, _) => { }).Run(CancellationToken.None);
            Assert.AreEqual(8, calls.Count(c => c.Epochs == 1));
            CollectionAssert.AreEquivalent(new[] { 5, 7, 6, 4 }, calls.Where(c => c.Epochs == 2).Select(c => c.Id).ToArray(), "the best half of one epoch go on");
            CollectionAssert.AreEquivalent(new[] { 7, 6 }, calls.Where(c => c.Epochs == 4).Select(c => c.Id).ToArray(), "trial 5 fell behind at two epochs");
            Assert.AreEqual(7, best!.Value.Trial.Id);
            Assert.AreEqual(4, best.Value.Result.Epochs);
        }
        finally { Directory.Delete(folder, true); }
    }

    [TestMethod]
    public void AResumeRepeatsOnlyTheTrainingThatWasRunningWhenTheSweepStopped()
    {
        string folder = Directory.CreateTempSubdirectory("regnet-sweep-").FullName;
        try
        {
            var first = new List<(int Id, int Epochs)>();
            using var stop = new CancellationTokenSource();
            // The sixth training is interrupted (as by Ctrl-C or a kill): it stays marked running in sweep.json.
            var stopped = new SweepScheduler(NewState(folder, Halving()), (t, e, _) =>
            {
                if (first.Count == 5) { stop.Cancel(); first.Add((t.Id, e)); return new TrialResult { Epochs = e }; }
                return Fake(t, e, first);
            }, (_, _) => { }).Run(stop.Token);
            Assert.IsNull(stopped);

            var second = new List<(int Id, int Epochs)>();
            var reopened = NewState(folder, Halving());
            Assert.AreEqual(5, reopened.Trials.Sum(t => t.Results.Count(r => r.Status == "finished")), "what finished was saved");
            var best = new SweepScheduler(reopened, (t, e, _) => Fake(t, e, second), (_, _) => { }).Run(CancellationToken.None);
            Assert.IsFalse(second.Any(c => c.Epochs == 1 && c.Id < 5), "the five finished trainings are not repeated");
            Assert.HasCount(3 + 4 + 2, second, "the interrupted one again, the two not started, then the higher rungs");
            Assert.AreEqual(7, best!.Value.Trial.Id);
        }
        finally { Directory.Delete(folder, true); }
    }

    [TestMethod]
    public void AResumeWithOtherOptionsIsRefused()
    {
        string folder = Directory.CreateTempSubdirectory("regnet-sweep-").FullName;
        try
        {
            NewState(folder, Halving());
            var e = Assert.ThrowsExactly<UserError>(() => NewState(folder, Halving(eta: 3)));
            StringAssert.Contains(e.Message, "another --name");
        }
        finally { Directory.Delete(folder, true); }
    }

    [TestMethod]
    public void SearchSpaceSyntaxAndSampling()
    {
        var lr = SearchDimension.Parse("lr=log:1e-4..1e-1");
        var area = SearchDimension.Parse("area-factor=lin:0.08..1");
        var mixup = SearchDimension.Parse("mixup=choice:0,0.2,0.4");
        var random = new Random(3);
        var lrs = Enumerable.Range(0, 200).Select(_ => lr.Sample(random)).ToList();
        Assert.IsTrue(lrs.All(v => v is >= 1e-4 and <= 1e-1));
        Assert.IsGreaterThan(40, lrs.Count(v => v < 1e-3), "log-uniform: a third of the draws below 1e-3");
        Assert.IsTrue(Enumerable.Range(0, 100).Select(_ => area.Sample(random)).All(v => v is >= 0.08 and <= 1));
        CollectionAssert.AreEquivalent(new[] { 0, 0.2, 0.4 }, Enumerable.Range(0, 100).Select(_ => mixup.Sample(random)).Distinct().ToArray());
        foreach (var (bad, says) in new[] { ("lr=log:0..1", "positive"), ("batch-size=lin:8..64", "cannot be searched"), ("lr=1e-3", "name=log:"), ("lr=lin:1..0.1", "low to high") })
            StringAssert.Contains(Assert.ThrowsExactly<UserError>(() => SearchDimension.Parse(bad)).Message, says);
    }

    [TestMethod]
    public void ASweepWithoutValidationDataOrSearchSpaceIsAUserError()
    {
        using var images = new ToolImages();
        string data = images.Folder("train", perClass: 2);
        var noSpace = ToolRun.Invoke("sweep", data, "--val-fraction", "0.25", "-w", images.Root);
        Assert.AreEqual(RegNetApp.UserErrorExitCode, noSpace.ExitCode, noSpace.Output);
        StringAssert.Contains(noSpace.Output, "--param");
        var noValidation = ToolRun.Invoke("sweep", data, "--param", "lr=log:1e-3..1e-1", "-w", images.Root);
        Assert.AreEqual(RegNetApp.UserErrorExitCode, noValidation.ExitCode, noValidation.Output);
        StringAssert.Contains(noValidation.Output, "--val");
        var clash = ToolRun.Invoke("sweep", data, "--val-fraction", "0.25", "--param", "lr=log:1e-3..1e-1", "-w", images.Root, "--", "--lr", "0.1");
        Assert.AreEqual(RegNetApp.UserErrorExitCode, clash.ExitCode, clash.Output);
        StringAssert.Contains(clash.Output, "--lr after --");
    }
}
