namespace RegNetML.Tool.Tracking;

/// <summary>Where runs are kept when no --workspace is given.</summary>
internal static class Workspace
{
    /// <summary>The default workspace folder (the current directory, as for regnet train); runs are in its runs/ folder.</summary>
    public const string Default = ".";
}
