using Microsoft.ML.RegNet.Weights.Formats;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Tests.Weights;

/// <summary>Fixtures of tests/fixtures/weights/generate_weight_fixtures.py.</summary>
internal static class WeightFixtures
{
    public const int NumberOfClasses = 5;
    public const double Tolerance = 1e-4;
    public const string MaliciousMarker = "/tmp/regnetml_malicious_pickle_ran";

    public static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "weights");

    public static string PathOf(string file) => Path.Combine(Dir, file);

    public static RegNetSpec TinyY { get; } = RegNetSpec.Create(5, 8, 8, 2, 8, seRatio: 0.25, name: "tiny_y");

    public static RegNetSpec TinyX { get; } = RegNetSpec.Create(5, 8, 8, 2, 8, seRatio: 0.0, name: "tiny_x");

    private static readonly Lazy<Dictionary<string, Tensor>> ReferenceTensors = new(() => Safetensors.Read(PathOf("reference.safetensors")).Tensors);

    /// <summary>pixels (2×3×64×64, RGB, 0–255), logits_imagenet_y/x, logits_keras_y/x.</summary>
    public static Tensor Reference(string name) => ReferenceTensors.Value[name];

    /// <summary>Applies <paramref name="norm"/> to RGB pixels in [0, 255]: (p·scale − mean) / std, then reorders channels.</summary>
    public static Tensor Normalize(Tensor pixels, ImageNormalization norm)
    {
        using var scope = NewDisposeScope();
        var mean = tensor(norm.Mean, new long[] { 1, 3, 1, 1 });
        var std = tensor(norm.Std, new long[] { 1, 3, 1, 1 });
        var x = (pixels * norm.Scale - mean) / std;
        if (norm.Order == ChannelOrder.Bgr) x = x.flip(1);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Eval-mode logits of <paramref name="model"/> on the reference pixels, preprocessed by <paramref name="preprocessing"/>.</summary>
    public static Tensor Logits(Microsoft.ML.RegNet.RegNetModel model, PreprocessingSpec preprocessing)
    {
        using var noGrad = no_grad();
        model.eval();
        using var input = Normalize(Reference("pixels"), preprocessing.Normalization);
        return model.call(input);
    }

    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "regnetml-weights-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
