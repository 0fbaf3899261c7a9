using System.Text.RegularExpressions;

namespace Microsoft.ML.RegNet;

/// <summary>Writes a file so that readers see either the old content or the complete new one, never a partial file.</summary>
internal static partial class AtomicFile
{
    /// <summary>Writes through <paramref name="write"/> into a temporary file beside <paramref name="path"/>, then renames it over.</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="write">Writes the content.</param>
    /// <param name="backupPath">When set and <paramref name="path"/> exists, the replaced file becomes this one (an earlier
    /// backup is replaced); <paramref name="path"/> itself exists throughout.</param>
    public static void Write(string path, Action<Stream> write, string? backupPath = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string? directory = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        string temp = TemporaryPath(full);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            // File.Replace links the old file to the backup name before renaming (Unix), so the target never disappears.
            if (backupPath is not null && File.Exists(full)) File.Replace(temp, full, Path.GetFullPath(backupPath));
            else File.Move(temp, full, overwrite: true);
        }
        catch
        {
            // Best effort: a failed clean-up must not hide the error that caused it.
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Deletes the temporary files that writes into <paramref name="directory"/> left behind when their process was
    /// killed (they are named <c>.&lt;file&gt;.&lt;32 hex digits&gt;.tmp</c>). Call it only while no other writer uses the folder.</summary>
    /// <returns>The files deleted.</returns>
    public static IReadOnlyList<string> RemoveInterruptedWrites(string directory)
    {
        var removed = new List<string>();
        if (!Directory.Exists(directory)) return removed;
        foreach (var file in Directory.EnumerateFiles(directory, ".*.tmp"))
        {
            if (!IsTemporary(Path.GetFileName(file))) continue;
            File.Delete(file);
            removed.Add(file);
        }
        return removed;
    }

    /// <summary>True for the name of a temporary file of <see cref="Write"/>.</summary>
    public static bool IsTemporary(string fileName) => TemporaryName().IsMatch(fileName);

    private static string TemporaryPath(string full) =>
        Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");

    [GeneratedRegex(@"^\..+\.[0-9a-f]{32}\.tmp$")]
    private static partial Regex TemporaryName();
}
