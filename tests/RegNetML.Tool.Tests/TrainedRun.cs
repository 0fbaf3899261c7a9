namespace RegNetML.Tool.Tests;

/// <summary>One tiny run trained once per test assembly for the commands that need a model (evaluate, predict, export, weights).</summary>
internal static class TrainedRun
{
    /// <summary>Deletes the shared run's temporary folder (called once the assembly's tests are done).</summary>
    public static void Delete()
    {
        if (Shared.IsValueCreated) Shared.Value.Images.Dispose();
    }

    private static readonly Lazy<(ToolImages Images, string Run, string Val)> Shared = new(() =>
    {
        var images = new ToolImages();
        string data = images.Folder("train", perClass: 8);
        string val = images.Folder("val", perClass: 3, seed: 2);
        var run = ToolRun.Invoke(images.TrainArgs(data, epochs: 3, "--val", val, "--lr", "0.01"));
        Assert.AreEqual(0, run.ExitCode, run.Output);
        return (images, run.Line("run"), val);
    });

    public static ToolImages Images => Shared.Value.Images;
    /// <summary>The run folder (model.zip, checkpoints/latest.ckpt, regnet.json).</summary>
    public static string Run => Shared.Value.Run;
    /// <summary>Labelled validation images: blue/, red/, three each.</summary>
    public static string Val => Shared.Value.Val;
}
