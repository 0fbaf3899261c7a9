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
// Redirected output is read by programs and people's editors: no wrapping at an assumed 80 columns.
if (Console.IsOutputRedirected) AnsiConsole.Console.Profile.Width = 4096;
return RegNetApp.Run(args, AnsiConsole.Console, stop.Token);
