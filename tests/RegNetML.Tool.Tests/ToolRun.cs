using Spectre.Console.Testing;

[assembly: DoNotParallelize]

namespace RegNetML.Tool.Tests;

/// <summary>One in-process invocation of <c>regnet</c>: its exit code and everything it wrote.</summary>
internal sealed record ToolRun(int ExitCode, string Output)
{
    /// <summary>Runs the tool as a redirected (non-interactive, no colour) console of the given width.</summary>
    public static ToolRun Invoke(params string[] args) => Invoke(interactive: false, args);

    public static ToolRun Invoke(bool interactive, params string[] args)
    {
        var console = new TestConsole().Width(200);
        console.Profile.Capabilities.Interactive = interactive;
        console.Profile.Capabilities.Ansi = interactive;
        int exitCode = RegNetApp.Run(args, console);
        return new ToolRun(exitCode, console.Output);
    }
}
