using TorchSharp.Utils;
using Microsoft.ML.RegNet.Modules;
using Microsoft.ML.RegNet.Onnx;
using Microsoft.ML.RegNet.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet;

/// <summary>
/// A RegNet network: stem (3×3/s2, 32 channels) → four stages of residual bottleneck blocks → global average pool → linear head.
/// </summary>
/// <remarks>
/// State-dict names follow timm (<c>stem.conv</c>, <c>s1.b1.conv1.conv</c>, …, <c>head.fc</c>), the neutral layout
/// that safetensors files written here use; torchvision, pycls and Keras layouts are mapped onto it when weights load.
/// The forward pass returns logits; <c>numberOfClasses: 0</c> gives a headless model that returns pooled features.
/// </remarks>
public sealed class RegNetModel : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    /// <summary>Smallest input side the network accepts (five stride-2 reductions; the Keras minimum too).</summary>
    public const int MinimumInputSize = 32;

    [ComponentName(Name = "stem")]
    private readonly ConvNorm _stem;
    private readonly RegStage[] _stages;
    [ComponentName(Name = "head")]
    private readonly ClassifierHead? _head;
    private PaddingStyle _padding = PaddingStyle.Symmetric;

    /// <summary>Builds the network with pycls initialisation.</summary>
    /// <param name="spec">The architecture, e.g. <c>RegNetSpec.FromName("X002")</c>.</param>
    /// <param name="numberOfClasses">Classifier outputs; 0 for a headless feature extractor.</param>
    /// <param name="zeroInitLastBatchNorm">Start each residual branch's last BN γ at 0 (timm's default; off in pycls).</param>
    /// <param name="generator">Where every random initial weight is drawn from. Pass a generator seeded for this model to
    /// make its weights independent of other threads; null draws from libtorch's process-wide generator (what
    /// <c>torch.manual_seed</c> seeds), which concurrent threads share.</param>
    public RegNetModel(RegNetSpec spec, int numberOfClasses = 1000, bool zeroInitLastBatchNorm = false, Generator? generator = null)
        : base(nameof(RegNetModel))
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (numberOfClasses < 0)
            throw new ArgumentException($"numberOfClasses must be positive, or 0 for a headless model (got {numberOfClasses}).", nameof(numberOfClasses));
        TorchRuntime.Configure();

        Spec = spec;
        NumberOfClasses = numberOfClasses;
        _stem = new ConvNorm(3, spec.StemWidth, 3, stride: 2);
        _stages = spec.Blocks.GroupBy(b => b.Stage).Select(g => new RegStage(g)).ToArray();
        for (int i = 0; i < _stages.Length; i++) register_module($"s{i + 1}", _stages[i]);
        if (numberOfClasses > 0) _head = new ClassifierHead(spec.FeatureWidth, numberOfClasses);
        RegisterComponents();
        InitializeWeights(zeroInitLastBatchNorm, generator);
    }

    /// <summary>The architecture.</summary>
    public RegNetSpec Spec { get; }

    /// <summary>Classifier outputs; 0 when headless.</summary>
    public int NumberOfClasses { get; }

    /// <summary>The stem convolution.</summary>
    internal ConvNorm Stem => _stem;

    /// <summary>The four stages, in order.</summary>
    internal IReadOnlyList<RegStage> Stages => _stages;

    /// <summary>The classifier, or null when headless.</summary>
    public Linear? Classifier => _head?.Fc;

    /// <summary>Padding of the strided 3×3 convolutions; <see cref="PaddingStyle.TensorFlowSame"/> for Keras-trained weights.</summary>
    public PaddingStyle Padding
    {
        get => _padding;
        set
        {
            _padding = value;
            foreach (var conv in AllConvNorms()) conv.Padding = value;
        }
    }

    /// <summary>Logits (N × numberOfClasses), or pooled features (N × FeatureWidth) when headless.</summary>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return ForwardFromTrunk(ForwardTrunk(input, _stages.Length), _stages.Length).MoveToOuterDisposeScope();
    }

    /// <summary>The output of each of the four stages (strides 4, 8, 16, 32), for feature extraction and dense tasks.</summary>
    public Tensor[] ForwardFeatures(Tensor input)
    {
        using var scope = NewDisposeScope();
        var features = new Tensor[_stages.Length];
        ForwardTrunk(input, _stages.Length, features);
        foreach (var f in features) f.MoveToOuterDisposeScope();
        return features;
    }

    /// <summary>Pooled features before the classifier (N × FeatureWidth).</summary>
    public Tensor ForwardPooled(Tensor input)
    {
        using var scope = NewDisposeScope();
        return ForwardTrunk(input, _stages.Length).mean(new long[] { 2, 3 }).MoveToOuterDisposeScope();
    }

    /// <summary>The stem and the first <paramref name="stages"/> stages (the whole body, or the frozen part when fine-tuning);
    /// fills <paramref name="features"/>[i] with stage i's output when given. Call inside a dispose scope.</summary>
    internal Tensor ForwardTrunk(Tensor input, int stages, Tensor[]? features = null)
    {
        ValidateInput(input);
        // Channels-last (NHWC) strides would train 1.3× faster with oneDNN, but its AVX2 NHWC kernels compute wrong forward
        // results for ungrouped convolutions of ≥184 channels on small maps, and its AVX kernels (correct) are no faster
        // than AVX2 in NCHW; so the network runs in the default layout (README, "oneDNN").
        var x = _stem.call(input);
        for (int i = 0; i < stages; i++)
        {
            x = _stages[i].call(x);
            if (features is not null) features[i] = x;
        }
        return x;
    }

    /// <summary>The rest of the network from the output of <see cref="ForwardTrunk"/>: stages from <paramref name="firstStage"/>
    /// on, pooling and the classifier. Call inside a dispose scope.</summary>
    internal Tensor ForwardFromTrunk(Tensor trunk, int firstStage)
    {
        var x = trunk;
        for (int i = firstStage; i < _stages.Length; i++) x = _stages[i].call(x);
        var pooled = x.mean(new long[] { 2, 3 });
        return _head is null ? pooled : _head.call(pooled);
    }

    // Stem, stages, then the mean over H×W as GlobalAveragePool + Flatten, then the classifier when there is one.
    OnnxValue IOnnxExportable.Export(OnnxGraphWriter graph, string prefix, OnnxValue input)
    {
        string Child(string name) => prefix.Length == 0 ? name : $"{prefix}.{name}";
        var x = graph.Module(_stem, Child("stem"), input);
        for (int i = 0; i < _stages.Length; i++) x = graph.Module(_stages[i], Child($"s{i + 1}"), x);
        string pooled = graph.Node("GlobalAveragePool", new[] { x.Name }, Child("head.pool"));
        x = new OnnxValue(graph.Node("Flatten", new[] { pooled }, Child("head.flatten"), OnnxProtos.Int("axis", 1)), null);
        return _head is null ? x : graph.Module(_head, Child("head"), x);
    }

    private static void ValidateInput(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 4 || input.shape[1] != 3 || input.shape[2] < MinimumInputSize || input.shape[3] < MinimumInputSize)
            throw new ArgumentException(
                $"RegNetModel expects a float tensor of shape N×3×H×W with H and W at least {MinimumInputSize}; " +
                $"got shape [{string.Join(", ", input.shape)}].", nameof(input));
    }

    /// <summary>Normalisation every ConvNorm uses in training mode instead of its own batch statistics (null: its own).</summary>
    internal void SetTrainingNormalization(Func<Tensor, BatchNorm2d, Tensor>? normalize)
    {
        foreach (var conv in AllConvNorms()) conv.TrainingNormalization = normalize;
    }

    /// <summary>Folds BatchNorm into the convolutions of the stem and the first <paramref name="trunkStages"/> stages, for
    /// their eval-mode forward while they are frozen (<see cref="ConvNorm.FoldNormalization"/>); null unfolds every layer.</summary>
    internal void FoldFrozenNormalization(int? trunkStages)
    {
        foreach (var conv in AllConvNorms()) conv.FoldNormalization(false);
        if (trunkStages is { } stages)
            foreach (var conv in AllConvNorms(stages)) conv.FoldNormalization(true);
    }

    internal IEnumerable<ConvNorm> AllConvNorms(int? stages = null)
    {
        yield return _stem;
        foreach (var block in _stages.Take(stages ?? _stages.Length).SelectMany(s => s.Blocks))
        {
            yield return block.Conv1;
            yield return block.Conv2;
            yield return block.Conv3;
            if (block.Downsample is not null) yield return block.Downsample;
        }
    }

    // pycls init: conv N(0, sqrt(2 / fan_out)) with fan_out = k·k·C_out (not divided by groups), BN γ = 1 and β = 0,
    // linear N(0, 0.01) with zero bias. Conv biases (only SE has them) get PyTorch's default U(±1/sqrt(fan_in)), as in
    // pycls, but redrawn here: the module constructors drew them from the process-wide generator.
    // Every draw goes through the given generator in a fixed order (named_modules is ordered), so the weights depend on it alone.
    private void InitializeWeights(bool zeroInitLastBatchNorm, Generator? generator)
    {
        using var noGrad = no_grad();
        foreach (var (_, module) in named_modules())
        {
            switch (module)
            {
                case Conv2d conv:
                    var w = conv.weight!;
                    long fanOut = w.shape[0] * w.shape[2] * w.shape[3];
                    w.normal_(0.0, Math.Sqrt(2.0 / fanOut), generator);
                    if (conv.bias is { } bias)
                    {
                        double bound = 1.0 / Math.Sqrt(w.shape[1] * w.shape[2] * w.shape[3]);
                        bias.uniform_(-bound, bound, generator);
                    }
                    break;
                case BatchNorm2d bn:
                    bn.weight!.fill_(1.0);
                    bn.bias!.zero_();
                    break;
                case Linear linear:
                    linear.weight!.normal_(0.0, 0.01, generator);
                    linear.bias?.zero_();
                    break;
            }
        }
        if (zeroInitLastBatchNorm)
            foreach (var block in _stages.SelectMany(s => s.Blocks))
                block.Conv3.Norm.weight!.zero_();
    }
}
