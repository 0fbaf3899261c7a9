using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.ML;
using Microsoft.ML.RegNet;
using Microsoft.ML.RegNet.Training;

// Usage: RegNetML.FaultHost <image folder> <workspace> <output weights file> [resume path]
// Trains RegNetX-002 at 32×32 on the PNGs of the folder (label = file name up to '_'), with the same images as validation
// set, and writes the final model's tensors to the output file. REGNET_FAULT=<point>:<n> kills the process (SIGKILL, as
// kill -9 does) the n-th time training reaches that point.
if (args.Length < 3)
{
    Console.Error.WriteLine("usage: RegNetML.FaultHost <image folder> <workspace> <output weights file> [resume path]");
    return 2;
}
string images = args[0], workspace = args[1], output = args[2];
string? resume = args.Length > 3 ? args[3] : null;

if (Environment.GetEnvironmentVariable("REGNET_FAULT") is { Length: > 0 } fault)
{
    string point = fault[..fault.LastIndexOf(':')];
    int n = int.Parse(fault[(fault.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    int hits = 0;
    FaultPoints.Hook = p =>
    {
        if (p != point || ++hits != n) return;
        Console.Out.WriteLine($"fault: killing at {point} #{n}");
        Console.Out.Flush();
        Process.GetCurrentProcess().Kill();
        Thread.Sleep(Timeout.Infinite);
    };
}

var rows = Directory.GetFiles(images, "*.png").Order(StringComparer.Ordinal)
    .Select(f => new Row { ImagePath = f, Label = Path.GetFileName(f).Split('_')[0] }).ToList();
var ml = new MLContext(seed: 1);
var data = ml.Data.LoadFromEnumerable(rows);
var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.LoadImages("Image", null, nameof(Row.ImagePath))).Fit(data).Transform(data);
var options = new RegNetTrainer.Options
{
    Architecture = "X002", ImageSize = 32, BatchSize = 4, MaxEpochs = 3, LearningRate = 2e-3, Seed = 7, NumberOfThreads = 1, WorkerThreads = 1,
    LogEveryNSteps = 1, CheckpointEveryNSteps = 3, WorkspacePath = workspace, ResumeFrom = resume, ValidationSet = keyed,
};
try
{
    using var model = ml.MulticlassClassification.Trainers.RegNet(options).Fit(keyed);
    model.Model.save(output);
    Console.Out.WriteLine($"weights {Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(output)))}");
    return 0;
}
catch (Exception e)
{
    Console.Error.WriteLine($"error: {e.GetType().Name}: {e.Message}");
    return 3;
}

internal sealed class Row
{
    public string ImagePath { get; set; } = "";
    public string Label { get; set; } = "";
}
