using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RegNetML.Tool.Tests;

/// <summary>Run folders written the way the trainer writes them (config.json, metrics.jsonl, status.json), without
/// training: the tracking commands read only these files, and the library's tests check that the trainer writes them.</summary>
internal static class FakeRuns
{
    public static string Workspace() => Directory.CreateTempSubdirectory("regnet-tool-ws-").FullName;

    /// <summary>A run of <paramref name="top1"/>.Length epochs, 4 steps each, with these validation accuracies.</summary>
    public static string Write(string workspace, string name, string arch, double lr, double[] top1, string status = "finished",
        DateTime? started = null, int batchSize = 32, double wallSeconds = 75)
    {
        string folder = Path.Combine(workspace, "runs", name);
        Directory.CreateDirectory(folder);
        var config = new JsonObject
        {
            ["architecture"] = arch, ["started"] = (started ?? DateTime.Now).ToString("O", CultureInfo.InvariantCulture),
            ["LearningRate"] = lr, ["BatchSize"] = batchSize, ["MaxEpochs"] = top1.Length, ["training_rows"] = 4 * batchSize,
            ["augmentation"] = new JsonObject { ["AreaFactor"] = 0.08 }, ["WorkspacePath"] = workspace,
        };
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        var lines = new List<string>();
        for (int epoch = 0; epoch < top1.Length; epoch++)
        {
            for (int step = 1; step <= 4; step++)
            {
                long global = epoch * 4 + step;
                lines.Add(Record("TrainSteps", epoch, global, loss: 2.0 / (1 + global * lr * 100), accuracy: top1[epoch] * 0.9, lr: lr * (1 - global / (4.0 * top1.Length + 1))));
            }
            lines.Add(Record("TrainEpoch", epoch, (epoch + 1) * 4, loss: 2.2 * (1 - 0.9 * top1[epoch]), accuracy: top1[epoch] * 0.9, lr: lr));
            lines.Add(Record("Validation", epoch, (epoch + 1) * 4, loss: 2 * (1 - top1[epoch]), accuracy: top1[epoch], lr: lr));
        }
        File.WriteAllLines(Path.Combine(folder, "metrics.jsonl"), lines);
        var statusJson = new JsonObject
        {
            ["status"] = status, ["detail"] = status == "finished" ? "completed" : null, ["wall_seconds"] = wallSeconds,
            ["pid"] = Environment.ProcessId, ["host"] = Environment.MachineName,
            ["process_started"] = System.Diagnostics.Process.GetCurrentProcess().StartTime.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture),
            ["updated"] = DateTime.Now.ToString("O", CultureInfo.InvariantCulture),
        };
        File.WriteAllText(Path.Combine(folder, "status.json"), statusJson.ToJsonString());
        return folder;
    }

    private static string Record(string phase, int epoch, long step, double loss, double accuracy, double lr) => JsonSerializer.Serialize(new
    {
        phase, epoch, step, loss, accuracy, top5 = Math.Min(1, accuracy + 0.2), learning_rate = lr, images_per_second = 100.0, images = 32,
    });
}
