using Spectre.Console;

namespace RegNetML.Tool;

/// <summary>Lines other programs parse (<c>run: …</c>, JSON): written as they are, never wrapped at the console's width
/// nor read as markup.</summary>
internal static class ConsoleLines
{
    public static void Raw(this IAnsiConsole console, string line)
    {
        console.Profile.Out.Writer.WriteLine(line);
        console.Profile.Out.Writer.Flush();
    }
}
