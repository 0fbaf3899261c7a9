using RegNetML.Tool;
using Spectre.Console;

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl-C asks the command to stop cleanly (training writes a checkpoint); a second one ends the process.
    if (stop.IsCancellationRequested) return;
    e.Cancel = true;
    stop.Cancel();
    Console.Error.WriteLine("stopping after the current step (Ctrl-C again to abort)…");
};
return RegNetApp.Run(args, AnsiConsole.Console, stop.Token);
