namespace RegNetML.Tool;

/// <summary>File writes that a reader (or a process killed half-way) never sees half done.</summary>
internal static class ToolFiles
{
    /// <summary>Writes into a temporary file beside <paramref name="path"/>, flushes it to disk and renames it over.</summary>
    public static void WriteAtomically(string path, byte[] content)
    {
        string full = Path.GetFullPath(path);
        string temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
