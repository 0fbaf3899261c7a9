namespace RegNetML.Tool.Tracking;

/// <summary>Where runs are kept when no --workspace is given.</summary>
internal static class Workspace
{
    /// <summary>The default workspace folder, relative to the current directory; runs go into its runs/ folder.</summary>
    public const string Default = "runs";
}
