using System.Diagnostics;
using System.Reflection;

namespace Microsoft.ML.RegNet.Tests.Reliability;

/// <summary>Runs tests/RegNetML.FaultHost as a child process: trains X002 at 32×32 and optionally kills itself (SIGKILL)
/// at a named fault point.</summary>
internal static class FaultHost
{
    // The host's own output folder, set at build time (its deps.json resolves libtorch).
    public static string Path => typeof(FaultHost).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "FaultHost").Value!;

    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public bool Killed => Stdout.Contains("fault: killing at", StringComparison.Ordinal);
        public string? WeightsHash => Stdout.Split('\n').FirstOrDefault(l => l.StartsWith("weights ", StringComparison.Ordinal))?[8..].Trim();
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
    }

    public static Result Run(string images, string workspace, string output, string? resume = null, string? fault = null)
    {
        // The SDK tells test processes which dotnet runs them; plain "dotnet" from PATH otherwise.
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "exec", Path, images, workspace, output }) start.ArgumentList.Add(arg);
        if (resume is not null) start.ArgumentList.Add(resume);
        start.Environment["REGNET_FAULT"] = fault ?? "";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(180_000))
        {
            process.Kill();
            Assert.Fail($"the fault host did not finish in 3 minutes (fault {fault})");
        }
        return new Result(process.ExitCode, stdout, stderr.Result);
    }
}
