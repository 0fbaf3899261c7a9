using RegNetML.Tool.Commands;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RegNetML.Tool;

/// <summary>The command tree, built once per invocation so that tests drive it in-process with their own console.</summary>
internal static class RegNetApp
{
    /// <summary>Exit code for errors the user caused (bad arguments, missing files): the message says what to do.</summary>
    public const int UserErrorExitCode = 2;

    public static int Run(string[] args, IAnsiConsole console, CancellationToken cancellation = default)
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
            config.AddCommand<TrainCommand>("train").WithDescription("Train on an image folder, a CSV of path,label or an ImageNet layout; writes a run folder and model.zip.");
            config.AddCommand<EvaluateCommand>("evaluate").WithDescription("Top-1/top-5, log-loss, per-class table and confusion matrix of a model on labelled images.");
            config.AddCommand<PredictCommand>("predict").WithDescription("The top-k classes of image files or folders, as a table or JSON lines.");
            config.AddCommand<ExportCommand>("export").WithDescription("Write a trained model as ONNX, model.zip, timm-layout safetensors or the own format.");
            config.AddBranch("weights", weights =>
            {
                weights.SetDescription("Weight files of every ecosystem.");
                weights.AddCommand<WeightsInspectCommand>("inspect").WithDescription("What a weight file holds and how it loads (the load report).");
                weights.AddCommand<WeightsConvertCommand>("convert").WithDescription("Convert any readable weight file to a writable format, with the load report.");
            });
            config.AddBranch("data", data =>
            {
                data.SetDescription("Check or write image data.");
                data.AddCommand<DataCheckCommand>("check").WithDescription("Decode every image strictly; report class counts and bad files (exit code 1 when any).");
                data.AddCommand<DataSampleCommand>("sample").WithDescription("Write the embedded Fashion-MNIST subset as train/ and test/ image folders.");
            });
            config.AddCommand<RunsCommand>("runs").WithDescription("Every run of a workspace as a table: date, architecture, the hyperparameters that differ, epochs, best top-1, wall time, status.");
            config.AddCommand<CompareCommand>("compare").WithDescription("One self-contained HTML page comparing runs: overlaid loss, top-1 and learning-rate curves and the hyperparameter table.");
            config.AddCommand<SweepCommand>("sweep").WithDescription("Hyperparameter search (successive halving or random) whose trials are ordinary runs; resumable; ends with the best configuration's train command.");
        });
        return app.Run(args.Where(a => a != "--verbose"), cancellation);
    }

    private static int Report(Exception exception, IAnsiConsole console, bool verbose)
    {
        // Ctrl-C before training had taken a step: nothing to keep, nothing to resume.
        if (exception is OperationCanceledException)
        {
            console.Raw("stopped before the first training step; nothing was written to resume from.");
            return Commands.TrainCommand.InterruptedExitCode;
        }
        var userError = exception switch
        {
            UserError or CommandParseException or CommandRuntimeException => exception,
            // The library's errors a user can cause already name the file and say what to do.
            FileNotFoundException or DirectoryNotFoundException or InvalidDataException or ArgumentException => exception,
            _ => null,
        };
        if (verbose) console.WriteException(exception);
        else
        {
            // The message is written unwrapped: one line, whatever the console's width (the terminal wraps it for the eye).
            console.Markup("[red]error:[/] ");
            console.Raw(userError is null ? $"{OneLine(exception)} (internal error; run again with --verbose for the stack trace)" : OneLine(userError));
        }
        return userError is null ? 1 : UserErrorExitCode;
    }

    /// <summary>The message's first line, without .NET's " (Parameter 'x')" suffix: what is wrong and what to do.</summary>
    private static string OneLine(Exception exception)
    {
        string message = exception is ArgumentException { ParamName: { } name } ? exception.Message.Replace($" (Parameter '{name}')", "") : exception.Message;
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length <= 1 ? message.Trim() : lines[0] + " (--verbose shows the rest)";
    }
}
