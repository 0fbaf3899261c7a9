using System.Reflection;
using System.Text.RegularExpressions;

namespace Microsoft.ML.RegNet.Tests;

/// <summary>
/// The public surface: the exported types are the ones a user touches, all in <c>Microsoft.ML.RegNet</c> (types) or
/// <c>Microsoft.ML</c> (catalog extensions); the README's examples need no other <c>using</c>, and
/// samples/RegNetML.ReadmeExamples, which the solution builds with only those usings, holds each of them line for line.
/// </summary>
[TestClass]
public sealed partial class PublicSurfaceTests
{
    // Changing this list changes the public API: do it on purpose, and document the new member.
    private static readonly string[] ExpectedPublicTypes =
    {
        "Microsoft.ML.ImageAugmentationCatalog",
        "Microsoft.ML.ModelSavingCatalog",
        "Microsoft.ML.RegNetCatalog",
        "Microsoft.ML.RegNet.AspectRatioSampling",
        "Microsoft.ML.RegNet.AugmentationOptions",
        "Microsoft.ML.RegNet.BadImagePolicy",
        "Microsoft.ML.RegNet.BlockSpec",
        "Microsoft.ML.RegNet.ChannelOrder",
        "Microsoft.ML.RegNet.ClassifierStatus",
        "Microsoft.ML.RegNet.DataParallelEnvironment",
        "Microsoft.ML.RegNet.DataParallelMode",
        "Microsoft.ML.RegNet.EarlyStoppingMetric",
        "Microsoft.ML.RegNet.EarlyStoppingOptions",
        "Microsoft.ML.RegNet.ImageNormalization",
        "Microsoft.ML.RegNet.Interpolation",
        "Microsoft.ML.RegNet.LearningRateScheduleKind",
        "Microsoft.ML.RegNet.LoadedRegNet",
        "Microsoft.ML.RegNet.MetricsPhase",
        "Microsoft.ML.RegNet.MixingOptions",
        "Microsoft.ML.RegNet.MixupPartner",
        "Microsoft.ML.RegNet.OnnxExportOptions",
        "Microsoft.ML.RegNet.OptimizerKind",
        "Microsoft.ML.RegNet.PaddingStyle",
        "Microsoft.ML.RegNet.PreprocessingSpec",
        "Microsoft.ML.RegNet.PretrainedCatalog",
        "Microsoft.ML.RegNet.PretrainedEntry",
        "Microsoft.ML.RegNet.PretrainedFile",
        "Microsoft.ML.RegNet.PretrainedOptions",
        "Microsoft.ML.RegNet.PretrainedSource",
        "Microsoft.ML.RegNet.PretrainedWeights",
        "Microsoft.ML.RegNet.RegNetImageBytesDecoder",
        "Microsoft.ML.RegNet.RegNetImageBytesDecoder+Decoded",
        "Microsoft.ML.RegNet.RegNetImageBytesDecoder+Encoded",
        "Microsoft.ML.RegNet.RegNetModel",
        "Microsoft.ML.RegNet.RegNetOnnxExporter",
        "Microsoft.ML.RegNet.RegNetOnnxImporter",
        "Microsoft.ML.RegNet.RegNetOnnxScoring",
        "Microsoft.ML.RegNet.RegNetOnnxSession",
        "Microsoft.ML.RegNet.RegNetRun",
        "Microsoft.ML.RegNet.RegNetRunStatus",
        "Microsoft.ML.RegNet.RegNetSpec",
        "Microsoft.ML.RegNet.RegNetTrainer",
        "Microsoft.ML.RegNet.RegNetTrainer+Options",
        "Microsoft.ML.RegNet.RegNetTrainingMetrics",
        "Microsoft.ML.RegNet.RegNetTransformer",
        "Microsoft.ML.RegNet.RegNetWeights",
        "Microsoft.ML.RegNet.RegNetZoo",
        "Microsoft.ML.RegNet.RegNetZooEntry",
        "Microsoft.ML.RegNet.ScheduleGranularity",
        "Microsoft.ML.RegNet.ShapeMismatch",
        "Microsoft.ML.RegNet.StateDictLayout",
        "Microsoft.ML.RegNet.TorchRuntime",
        "Microsoft.ML.RegNet.TorchRuntimeReport",
        "Microsoft.ML.RegNet.UnsafePickleException",
        "Microsoft.ML.RegNet.WeightDecaySemantics",
        "Microsoft.ML.RegNet.WeightFileReport",
        "Microsoft.ML.RegNet.WeightFormat",
        "Microsoft.ML.RegNet.WeightLoadOptions",
        "Microsoft.ML.RegNet.WeightLoadReport",
        "Microsoft.ML.RegNet.WeightMismatchException",
        "Microsoft.ML.RegNet.WidthRounding",
    };

    private static readonly string[] AllowedReadmeUsings = { "Microsoft.ML", "Microsoft.ML.RegNet" };

    [TestMethod]
    public void ThePublicTypesAreTheOnesAUserTouches()
    {
        var exported = typeof(RegNetModel).Assembly.GetExportedTypes().Select(t => t.FullName!).Order(StringComparer.Ordinal).ToArray();
        var expected = ExpectedPublicTypes.Order(StringComparer.Ordinal).ToArray();
        CollectionAssert.AreEqual(expected, exported,
            $"Public types ({exported.Length}): added {string.Join(", ", exported.Except(expected))}; removed {string.Join(", ", expected.Except(exported))}.");
        foreach (var type in typeof(RegNetModel).Assembly.GetExportedTypes())
            Assert.IsTrue(type.Namespace is "Microsoft.ML.RegNet" or "Microsoft.ML", $"{type.FullName} is public outside Microsoft.ML.RegNet / Microsoft.ML.");
    }

    [TestMethod]
    public void CatalogExtensionsLiveInMicrosoftML()
    {
        var extensionClasses = typeof(RegNetModel).Assembly.GetExportedTypes()
            .Where(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static).Any(m => m.IsDefined(typeof(System.Runtime.CompilerServices.ExtensionAttribute), false)))
            .ToList();
        CollectionAssert.AreEquivalent(new[] { "ImageAugmentationCatalog", "ModelSavingCatalog", "RegNetCatalog" }, extensionClasses.Select(t => t.Name).ToArray());
        foreach (var type in extensionClasses) Assert.AreEqual("Microsoft.ML", type.Namespace, type.Name);
    }

    [TestMethod]
    public void TheReadmeExamplesNeedOnlyMicrosoftMLAndMicrosoftMLRegNet()
    {
        var blocks = ReadmeCodeBlocks();
        Assert.IsGreaterThanOrEqualTo(3, blocks.Count, "the README's C# examples were not found");
        foreach (var block in blocks)
            foreach (string ns in Usings(block))
                CollectionAssert.Contains(AllowedReadmeUsings, ns, $"README example uses 'using {ns};':\n{block}");
        var sampleUsings = Usings(File.ReadAllText(ReadmeExamplesPath())).ToList();
        CollectionAssert.AreEquivalent(AllowedReadmeUsings, sampleUsings, "samples/RegNetML.ReadmeExamples compiles with exactly the README's usings");
    }

    [TestMethod]
    public void EveryReadmeExampleIsCompiledInTheReadmeExamplesSample()
    {
        var sample = Lines(File.ReadAllText(ReadmeExamplesPath()));
        foreach (var block in ReadmeCodeBlocks())
        {
            var code = Lines(block).Where(l => !UsingLine().IsMatch(l)).ToList();
            bool found = Enumerable.Range(0, sample.Count - code.Count + 1).Any(i => sample.Skip(i).Take(code.Count).SequenceEqual(code));
            Assert.IsTrue(found, $"This README example is not in samples/RegNetML.ReadmeExamples/Program.cs line for line:\n{block}");
        }
    }

    private static string RepoRoot() =>
        typeof(PublicSurfaceTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepoRoot").Value!;

    private static string ReadmeExamplesPath() => Path.Combine(RepoRoot(), "samples", "RegNetML.ReadmeExamples", "Program.cs");

    private static List<string> ReadmeCodeBlocks() =>
        CodeBlock().Matches(File.ReadAllText(Path.Combine(RepoRoot(), "README.md"))).Select(m => m.Groups[1].Value).ToList();

    private static IEnumerable<string> Usings(string code) =>
        code.Split('\n').Select(l => UsingLine().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value);

    // Non-blank lines without their indentation: the sample indents each example into a method body.
    private static List<string> Lines(string code) =>
        code.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();

    [GeneratedRegex(@"```csharp\r?\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CodeBlock();

    [GeneratedRegex(@"^\s*using\s+(?:static\s+)?([A-Za-z_][\w.]*)\s*;")]
    private static partial Regex UsingLine();
}
