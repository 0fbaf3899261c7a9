namespace RegNetML.Tool.Tests;

[TestClass]
public sealed class ZooCommandTests
{
    [TestMethod]
    public void ListsEveryZooModelWithItsParameterCount()
    {
        var run = ToolRun.Invoke("zoo");
        Assert.AreEqual(0, run.ExitCode, run.Output);
        foreach (var name in new[] { "RegNetX002", "RegNetX320", "RegNetY002", "RegNetY320" })
            StringAssert.Contains(run.Output, name);
        // RegNetX-002 has 2,684,792 parameters with 1,000 classes (Keras's count).
        StringAssert.Matches(run.Output, new System.Text.RegularExpressions.Regex(@"RegNetX002 .*\b2\.7\b"));
    }

    [TestMethod]
    public void AnUnknownOptionIsAUserErrorWithExitCode2()
    {
        var run = ToolRun.Invoke("zoo", "--no-such-option");
        Assert.AreEqual(RegNetApp.UserErrorExitCode, run.ExitCode, run.Output);
        StringAssert.Contains(run.Output, "no-such-option");
        Assert.DoesNotContain("   at ", run.Output, "no stack trace without --verbose");
    }
}
