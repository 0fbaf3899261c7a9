using RegNetML.Tool;
using Spectre.Console;

return RegNetApp.Run(args, AnsiConsole.Console);
