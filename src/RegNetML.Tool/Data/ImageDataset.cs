using System.Globalization;

namespace RegNetML.Tool.Data;

/// <summary>One image file (absolute path) and its class name.</summary>
public sealed class ImageItem
{
    public string ImagePath { get; set; } = "";
    public string Label { get; set; } = "";
}

/// <summary>
/// Labelled images from the layouts people already have: an image folder (one sub-folder per class), a CSV/TSV of
/// path,label, or an ImageNet-style folder (<c>train/&lt;wnid&gt;/*.JPEG</c> and <c>val/</c> with a label file).
/// </summary>
internal sealed record ImageDataset(string Source, IReadOnlyList<ImageItem> Items)
{
    public static readonly string[] ImageExtensions = { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp" };

    /// <summary>Class names in ordinal order, as ML.NET's MapValueToKey would number them if sorted.</summary>
    public IReadOnlyList<string> ClassNames { get; } = Items.Select(i => i.Label).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    public IReadOnlyDictionary<string, int> ClassCounts() =>
        Items.GroupBy(i => i.Label, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

    /// <summary>Reads <paramref name="source"/>; <paramref name="split"/> picks <c>train</c> or <c>val</c> of an ImageNet layout.</summary>
    public static ImageDataset Load(string source, string split = "train")
    {
        if (File.Exists(source)) return new ImageDataset(source, ReadTable(source));
        if (!Directory.Exists(source))
            throw new UserError($"{source} does not exist. Pass an image folder (one sub-folder per class), a CSV/TSV of path,label, or an ImageNet folder with train/ and val/.");
        string full = Path.GetFullPath(source);
        if (Directory.Exists(Path.Combine(full, "train")) && Directory.Exists(Path.Combine(full, "val")))
            return new ImageDataset(source, split == "val" ? ImageNetValidation(Path.Combine(full, "val")) : FromFolder(Path.Combine(full, "train")));
        return new ImageDataset(source, FromFolder(full));
    }

    /// <summary>Checks what training needs: at least one image of at least two classes.</summary>
    public ImageDataset RequireTrainable()
    {
        if (Items.Count == 0)
            throw new UserError($"{Source} holds no images ({string.Join(", ", ImageExtensions)}). Put each class's images in a sub-folder named after the class.");
        if (ClassNames.Count < 2)
            throw new UserError($"{Source} has one class only ('{ClassNames[0]}'); a classifier needs at least two. Add a sub-folder (or CSV rows) for each other class.");
        return this;
    }

    private static List<ImageItem> FromFolder(string folder)
    {
        var classes = Directory.GetDirectories(folder).Order(StringComparer.Ordinal).ToList();
        var loose = Directory.EnumerateFiles(folder).Where(IsImage).Take(1).ToList();
        if (classes.Count == 0 && loose.Count > 0)
            throw new UserError($"{folder} holds images but no class sub-folders (e.g. {Path.GetFileName(loose[0])}). Move each class's images into a sub-folder named after the class.");
        return classes.SelectMany(c => Directory.EnumerateFiles(c, "*", SearchOption.AllDirectories).Where(IsImage).Order(StringComparer.Ordinal)
            .Select(f => new ImageItem { ImagePath = f, Label = Path.GetFileName(c) })).ToList();
    }

    private static bool IsImage(string path) => ImageExtensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    /// <summary>path,label rows (comma, tab or semicolon; an optional header whose second column is not a label of
    /// an existing file is skipped); relative paths are relative to the table's folder.</summary>
    private static List<ImageItem> ReadTable(string table)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(table))!;
        var items = new List<ImageItem>();
        var lines = File.ReadAllLines(table);
        for (int i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            var cells = Split(lines[i]);
            if (cells.Length < 2)
                throw new UserError($"{table}, row {i + 1}: expected 'path,label' (comma, tab or semicolon separated), got '{lines[i]}'.");
            if (i == 0 && IsHeader(cells)) continue;
            string path = Path.IsPathRooted(cells[0]) ? cells[0] : Path.GetFullPath(Path.Combine(folder, cells[0]));
            items.Add(new ImageItem { ImagePath = path, Label = cells[1] });
        }
        return items;
    }

    private static bool IsHeader(string[] cells) =>
        cells[0].ToLowerInvariant() is "path" or "file" or "filename" or "image" or "imagepath" or "image_path" or "imageid";

    private static string[] Split(string line)
    {
        char separator = line.Contains('\t') ? '\t' : line.Contains(',') ? ',' : line.Contains(';') ? ';' : ' ';
        return line.Split(separator, StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(c => c.Trim('"')).ToArray();
    }

    /// <summary>ImageNet's val/: class sub-folders, or flat files with a label file (one 'file label' row per image,
    /// e.g. LOC_val_solution.csv, whose label column starts with the wnid).</summary>
    private static List<ImageItem> ImageNetValidation(string val)
    {
        if (Directory.GetDirectories(val).Length > 0) return FromFolder(val);
        string? labels = new[] { Path.Combine(val, "labels.txt"), Path.Combine(val, "labels.csv"), Path.Combine(val, "..", "LOC_val_solution.csv"), Path.Combine(val, "LOC_val_solution.csv") }
            .FirstOrDefault(File.Exists);
        if (labels is null)
            throw new UserError($"{val} has no class sub-folders and no label file. Add val/labels.txt ('file wnid' per line) or LOC_val_solution.csv beside val/.");
        var files = Directory.EnumerateFiles(val).Where(IsImage).ToDictionary(f => Path.GetFileNameWithoutExtension(f), StringComparer.Ordinal);
        var items = new List<ImageItem>();
        foreach (var (line, row) in File.ReadLines(labels).Select((l, i) => (l, i + 1)))
        {
            var cells = Split(line);
            if (cells.Length < 2 || (row == 1 && IsHeader(cells))) continue;
            string stem = Path.GetFileNameWithoutExtension(cells[0]);
            if (!files.TryGetValue(stem, out var file))
                throw new UserError($"{labels}, row {row.ToString(CultureInfo.InvariantCulture)}: {cells[0]} is not in {val}. Fix the label file or restore the image.");
            items.Add(new ImageItem { ImagePath = file, Label = cells[1].Split(' ')[0] });
        }
        return items;
    }
}
