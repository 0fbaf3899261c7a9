using Spectre.Console;
using Spectre.Console.Rendering;
using Spectre.Console.Testing;

[assembly: DoNotParallelize]

namespace RegNetML.Tool.Tests;

/// <summary>One in-process invocation of <c>regnet</c>: its exit code and everything it wrote.</summary>
internal sealed record ToolRun(int ExitCode, string Output)
{
    /// <summary>Runs the tool as a redirected (non-interactive, no colour) console of the given width.</summary>
    public static ToolRun Invoke(params string[] args) => Invoke(interactive: false, args);

    public static ToolRun Invoke(bool interactive, params string[] args) => Invoke(interactive, stopWhenOutputContains: null, args);

    /// <summary>Runs the tool and, as soon as its output contains <paramref name="stopWhenOutputContains"/>, cancels it the
    /// way the first Ctrl-C does.</summary>
    public static ToolRun Invoke(bool interactive, string? stopWhenOutputContains, params string[] args)
    {
        var console = new TestConsole().Width(200);
        console.Profile.Capabilities.Interactive = interactive;
        console.Profile.Capabilities.Ansi = interactive;
        using var stop = new CancellationTokenSource();
        IAnsiConsole target = stopWhenOutputContains is null ? console : new StoppingConsole(console, stopWhenOutputContains, stop);
        int exitCode = RegNetApp.Run(args, target, stop.Token);
        return new ToolRun(exitCode, console.Output);
    }

    /// <summary>The value of the tool's <c>name: value</c> line (e.g. <c>run</c>), or fails.</summary>
    public string Line(string name)
    {
        var line = Output.Split('\n').Select(l => l.TrimEnd('\r')).LastOrDefault(l => l.StartsWith(name + ": ", StringComparison.Ordinal));
        Assert.IsNotNull(line, $"no '{name}:' line in:\n{Output}");
        return line[(name.Length + 2)..];
    }

    /// <summary>Forwards to a test console and cancels once a marker has been written (on the writing thread, so deterministic).</summary>
    private sealed class StoppingConsole(TestConsole inner, string marker, CancellationTokenSource stop) : IAnsiConsole
    {
        public Profile Profile => inner.Profile;
        public IAnsiConsoleCursor Cursor => inner.Cursor;
        public IAnsiConsoleInput Input => inner.Input;
        public IExclusivityMode ExclusivityMode => inner.ExclusivityMode;
        public RenderPipeline Pipeline => inner.Pipeline;
        public void Clear(bool home) => inner.Clear(home);

        public void Write(IRenderable renderable)
        {
            inner.Write(renderable);
            StopOnMarker();
        }

        public void WriteAnsi(Action<AnsiWriter> action)
        {
            inner.WriteAnsi(action);
            StopOnMarker();
        }

        private void StopOnMarker()
        {
            if (!stop.IsCancellationRequested && inner.Output.Contains(marker, StringComparison.Ordinal)) stop.Cancel();
        }
    }
}
