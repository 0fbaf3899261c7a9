namespace RegNetML.Tool.Tests;

[TestClass]
public sealed class AssemblyFixtures
{
    [AssemblyCleanup]
    public static void DeleteSharedRun() => TrainedRun.Delete();
}
