using RegNetML.Tool.Commands;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RegNetML.Tool;

/// <summary>The command tree, built once per invocation so that tests drive it in-process with their own console.</summary>
internal static class RegNetApp
{
    /// <summary>Exit code for errors the user caused (bad arguments, missing files): the message says what to do.</summary>
    public const int UserErrorExitCode = 2;

    public static int Run(string[] args, IAnsiConsole console)
    {
        bool verbose = args.Contains("--verbose");
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("regnet");
            config.ConfigureConsole(console);
            config.UseStrictParsing();
            config.SetExceptionHandler((exception, _) => Report(exception, console, verbose));
            config.AddCommand<ZooCommand>("zoo").WithDescription("The 24 RegNetX/RegNetY models: depths, widths, parameters, FLOPs.");
            config.AddCommand<RunsCommand>("runs").WithDescription("Every run of a workspace as a table: date, architecture, the hyperparameters that differ, epochs, best top-1, wall time, status.");
            config.AddCommand<CompareCommand>("compare").WithDescription("One self-contained HTML page comparing runs: overlaid loss, top-1 and learning-rate curves and the hyperparameter table.");
        });
        return app.Run(args.Where(a => a != "--verbose"));
    }

    private static int Report(Exception exception, IAnsiConsole console, bool verbose)
    {
        var userError = exception switch
        {
            UserError or CommandParseException or CommandRuntimeException => exception,
            // The library's errors a user can cause already name the file and say what to do.
            FileNotFoundException or DirectoryNotFoundException or InvalidDataException or ArgumentException => exception,
            _ => null,
        };
        if (verbose) console.WriteException(exception);
        else if (userError is null)
            console.MarkupLineInterpolated($"[red]error:[/] {exception.Message} (internal error; run again with --verbose for the stack trace)");
        else console.MarkupLineInterpolated($"[red]error:[/] {userError.Message}");
        return userError is null ? 1 : UserErrorExitCode;
    }
}
