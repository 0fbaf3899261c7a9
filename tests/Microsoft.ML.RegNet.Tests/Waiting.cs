namespace Microsoft.ML.RegNet.Tests;

/// <summary>Polling for work other threads do (the input pipeline's reader and workers).</summary>
internal static class Waiting
{
    /// <summary>Until <paramref name="done"/>, or <paramref name="progress"/> (when given) has not changed for
    /// <paramref name="stillMilliseconds"/>, or 30 s.</summary>
    public static void Until(Func<bool> done, Func<long>? progress = null, int stillMilliseconds = 0)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var still = System.Diagnostics.Stopwatch.StartNew();
        long seen = -1;
        while (!done() && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (progress is not null)
            {
                if (progress() != seen)
                {
                    seen = progress();
                    still.Restart();
                }
                else if (still.ElapsedMilliseconds >= stillMilliseconds) return;
            }
            Thread.Sleep(5);
        }
    }
}
