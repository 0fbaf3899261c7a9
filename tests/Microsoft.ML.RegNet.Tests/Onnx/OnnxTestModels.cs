using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Onnx;

/// <summary>Small models with non-trivial BN statistics and affine parameters, so that a wrong export changes the outputs.</summary>
internal static class OnnxTestModels
{
    public static RegNetSpec SpecFor(string name) => name == "custom"
        ? RegNetSpec.Create(depth: 4, w0: 16, wa: 8, wm: 2, groupWidth: 8, seRatio: 0.25)
        : RegNetSpec.FromName(name);

    public static RegNetModel Create(string name, int numberOfClasses = 10, int seed = 1)
    {
        torch.random.manual_seed(seed);
        var model = new RegNetModel(SpecFor(name), numberOfClasses);
        Randomize(model);
        model.eval();
        return model;
    }

    public static void Randomize(RegNetModel model)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (_, module) in model.named_modules())
        {
            if (module is BatchNorm2d bn)
            {
                bn.weight!.copy_(rand(bn.weight.shape) + 0.5);
                bn.bias!.copy_(randn(bn.bias.shape) * 0.2);
                bn.running_mean!.copy_(randn(bn.running_mean.shape) * 0.2);
                bn.running_var!.copy_(rand(bn.running_var.shape) + 0.5);
                bn.num_batches_tracked!.fill_(17);
            }
        }
        if (model.Classifier is { } fc)
        {
            fc.weight!.copy_(randn(fc.weight.shape) * 0.2);
            fc.bias!.copy_(randn(fc.bias!.shape) * 0.1);
        }
    }

    public static float[] Forward(RegNetModel model, float[] input, int n, int size)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.eval();
        using var x = tensor(input, new long[] { n, 3, size, size });
        return model.call(x).contiguous().data<float>().ToArray();
    }

    public static float[] RandomInput(int n, int size, int seed, float scale = 1f)
    {
        var r = new Random(seed);
        var data = new float[n * 3 * size * size];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return data;
    }

    public static float MaxAbsDiff(float[] a, float[] b)
    {
        Assert.HasCount(a.Length, b);
        float max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    public static float Spread(float[] values) => values.Max() - values.Min();

    private static readonly System.Collections.Concurrent.ConcurrentBag<string> Created = new();

    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "regnet-onnx-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        Created.Add(dir);
        return dir;
    }

    /// <summary>Removes the folders <see cref="TempDir"/> made (called from each class's cleanup).</summary>
    public static void DeleteTempDirs()
    {
        while (Created.TryTake(out var dir))
        {
            try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
            catch (IOException) { } // a model zip still mapped by ONNX Runtime; the OS temp cleaner gets it
            catch (UnauthorizedAccessException) { }
        }
    }
}
