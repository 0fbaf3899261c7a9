using System.Reflection;
using Microsoft.ML.RegNet.Tests.Weights;

namespace Microsoft.ML.RegNet.Tests.Reliability;

// The hostile weight files join the fault summary: each refusal test of HostileWeightFileTests is one fault, counted as
// refused when the file was refused as that test demands (file and tensor named, quickly, without a large allocation)
// and as silent otherwise.
public sealed partial class FaultInjectionTests
{
    static partial void RunMoreFaults(FaultTally tally, string workspace)
    {
        var refusals = typeof(HostileWeightFileTests).GetMethods()
            .Where(m => m.GetCustomAttribute<TestMethodAttribute>() is not null && m.Name.Contains("Refused", StringComparison.Ordinal));
        foreach (var test in refusals)
        {
            var suite = new HostileWeightFileTests();
            suite.CreateDirectory();
            try
            {
                test.Invoke(suite, null);
                tally.Refused++;
            }
            catch (TargetInvocationException e)
            {
                tally.Silent++;
                tally.Failures.Add($"hostile weight file, {test.Name}: {e.InnerException?.Message}");
            }
            finally
            {
                suite.DeleteDirectory();
            }
        }
    }
}
