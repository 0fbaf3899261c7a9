using System.Collections.Concurrent;
using System.ComponentModel;
using RegNetML.Tool.Data;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RegNetML.Tool.Commands;

/// <summary><c>regnet data check</c>: the step to run before a long job: every image decoded, every bad one named.</summary>
internal sealed class DataCheckCommand(IAnsiConsole console) : Command<DataCheckCommand.Settings>
{
    /// <summary>Exit code when the check ran and found files that cannot be used.</summary>
    public const int BadFilesExitCode = 1;

    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<data>")]
        [Description("An image folder (one sub-folder per class), a CSV/TSV of path,label, or an ImageNet folder.")]
        public string Data { get; set; } = "";
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        var dataset = ImageDataset.Load(settings.Data);
        if (dataset.Items.Count == 0) throw new UserError($"{settings.Data} holds no images ({string.Join(", ", ImageDataset.ImageExtensions)}).");
        var findings = new ConcurrentBag<ImageFinding>();
        Parallel.ForEach(dataset.Items, new ParallelOptions { CancellationToken = cancellation }, item => findings.Add(ImageCheck.Check(item)));
        var bad = findings.Where(f => f.Error is not null).OrderBy(f => f.Path, StringComparer.Ordinal).ToList();

        var classes = new Table().AddColumns("class", "images", "bad");
        foreach (var (label, count) in dataset.ClassCounts())
            classes.AddRow(Markup.Escape(label), count.ToString(), bad.Count(b => b.Label == label).ToString());
        console.Write(classes);
        foreach (var group in findings.SelectMany(f => f.Notes.Select(n => (Note: n, f.Path))).GroupBy(x => x.Note).OrderBy(g => g.Key))
            console.WriteLine($"note: {group.Count()} image(s) with {group.Key} (converted to 8-bit RGB when loaded), e.g. {group.First().Path}");
        foreach (var finding in bad) console.WriteLine($"bad: {finding.Path}: {finding.Error}");
        console.WriteLine($"{dataset.Items.Count} images, {dataset.ClassNames.Count} classes, {bad.Count} bad");
        if (bad.Count > 0)
            console.WriteLine("Remove or replace the bad files (or fix the paths in the CSV) before training.");
        return bad.Count > 0 ? BadFilesExitCode : 0;
    }
}

/// <summary><c>regnet data sample</c>: the embedded Fashion-MNIST subset as image folders, so the README's commands need nothing else.</summary>
internal sealed class DataSampleCommand(IAnsiConsole console) : Command<DataSampleCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<folder>")]
        [Description("Where to write train/<class>/*.png and test/<class>/*.png.")]
        public string Folder { get; set; } = "";
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        string subset = Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset.bin.gz");
        if (!File.Exists(subset)) throw new InvalidOperationException($"The embedded subset {subset} is missing from the tool's installation; reinstall the tool.");
        var (train, test) = FashionMnistFiles.WriteImageFolders(subset, settings.Folder);
        string folder = Path.GetFullPath(settings.Folder);
        console.WriteLine($"{train.Count} training images in {Path.Combine(folder, "train")}, {test.Count} test images in {Path.Combine(folder, "test")} (Fashion-MNIST, MIT licence, 10 classes, 28×28)");
        return 0;
    }
}
