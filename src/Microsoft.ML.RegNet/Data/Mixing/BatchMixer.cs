using Microsoft.ML.RegNet.Data.Transforms;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Data.Mixing;

/// <summary>
/// Mixup / CutMix with soft targets and label smoothing on a batch of TorchSharp tensors (training only):
/// images <c>N×3×H×W</c> float, labels <c>N</c> int64 class indices (or <c>N×C</c> soft targets).
/// <see cref="Sample"/> draws a <see cref="MixingDecision"/>; <see cref="Apply"/> executes it. Mixed targets are
/// <c>λ·y + (1−λ)·y[partner]</c>, so each row still sums to 1.
/// </summary>
/// <remarks>Call inside the training step's dispose scope; returned tensors belong to the caller's current scope.</remarks>
internal sealed class BatchMixer
{
    /// <summary>Defines the mixing for <paramref name="numberOfClasses"/> classes.</summary>
    /// <param name="options">Mixup / CutMix settings.</param>
    /// <param name="numberOfClasses">Classes of the targets.</param>
    /// <param name="labelSmoothing">Label smoothing ε (the trainer's one knob): targets <c>1−ε+ε/C</c> and <c>ε/C</c>, before mixing.</param>
    public BatchMixer(MixingOptions options, int numberOfClasses, double labelSmoothing = 0)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (numberOfClasses < 1) throw new ArgumentOutOfRangeException(nameof(numberOfClasses), numberOfClasses, "Need at least one class.");
        if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "Must be in [0, 1).");
        Options = options;
        NumberOfClasses = numberOfClasses;
        LabelSmoothing = labelSmoothing;
    }

    /// <summary>Label smoothing ε applied to the targets.</summary>
    public double LabelSmoothing { get; }

    /// <summary>The settings.</summary>
    public MixingOptions Options { get; }

    /// <summary>Number of classes of the targets.</summary>
    public int NumberOfClasses { get; }

    /// <summary>Draws λ, partners and (for CutMix) the box for a batch of <paramref name="batchSize"/> images of H×W.</summary>
    public MixingDecision Sample(int batchSize, int height, int width, AugmentationRandom random)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Empty batch.");
        var partners = new long[batchSize];
        for (int i = 0; i < batchSize; i++) partners[i] = batchSize - 1 - i;
        var o = Options;
        bool mixup = o.MixupAlpha > 0, cutmix = o.CutMixAlpha > 0;
        // Fixed draw order: apply?, switch?, λ, partners, box.
        bool apply = random.NextDouble() < o.Probability;
        bool useCutMix = cutmix && (!mixup || random.NextDouble() < o.SwitchProbability);
        if (!apply || !(mixup || cutmix)) return new MixingDecision(1.0, false, partners);
        double lambda = random.NextBeta(useCutMix ? o.CutMixAlpha : o.MixupAlpha, useCutMix ? o.CutMixAlpha : o.MixupAlpha);
        if (o.Partner == MixupPartner.RandomPermutation)
        {
            for (int i = 0; i < batchSize; i++) partners[i] = i;
            random.Shuffle(partners.AsSpan());
        }
        if (!useCutMix) return new MixingDecision(lambda, false, partners);

        // timm rand_bbox: a box of relative side sqrt(1−λ) centred uniformly, clipped to the image.
        double ratio = Math.Sqrt(1 - lambda);
        int cutH = (int)(height * ratio), cutW = (int)(width * ratio);
        int cy = random.NextInt(height), cx = random.NextInt(width);
        int top = Math.Clamp(cy - cutH / 2, 0, height), bottom = Math.Clamp(cy + cutH / 2, 0, height);
        int left = Math.Clamp(cx - cutW / 2, 0, width), right = Math.Clamp(cx + cutW / 2, 0, width);
        if (o.CorrectCutMixLambda) lambda = 1 - (double)(bottom - top) * (right - left) / ((double)height * width);
        return new MixingDecision(lambda, true, partners, top, bottom, left, right);
    }

    /// <summary>Mixes images and builds (smoothed) soft targets.</summary>
    /// <returns>Mixed images (a new tensor) and <c>N×C</c> float targets.</returns>
    public (Tensor Images, Tensor Targets) Apply(Tensor images, Tensor labels, MixingDecision decision)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(decision);
        if (images.dim() != 4) throw new ArgumentException($"Images must be N×C×H×W (got [{string.Join(", ", images.shape)}]).", nameof(images));
        long n = images.shape[0];
        if (decision.Partners.Length != n) throw new ArgumentException($"The decision is for {decision.Partners.Length} samples, the batch has {n}.", nameof(decision));
        var targets = ToTargets(labels, NumberOfClasses, LabelSmoothing, images.device);
        if (decision.IsIdentity) return (images.alias(), targets);

        using var scope = NewDisposeScope();
        using var index = tensor(decision.Partners, device: images.device);
        var partnerImages = images.index_select(0, index);
        var partnerTargets = targets.index_select(0, index);
        Tensor mixed;
        if (decision.IsCutMix)
        {
            mixed = images.clone();
            if (decision.Bottom > decision.Top && decision.Right > decision.Left)
            {
                var rows = TensorIndex.Slice(decision.Top, decision.Bottom);
                var cols = TensorIndex.Slice(decision.Left, decision.Right);
                mixed[TensorIndex.Colon, TensorIndex.Colon, rows, cols] = partnerImages[TensorIndex.Colon, TensorIndex.Colon, rows, cols];
            }
        }
        else
        {
            mixed = images * decision.Lambda + partnerImages * (1 - decision.Lambda);
        }
        var mixedTargets = targets * decision.Lambda + partnerTargets * (1 - decision.Lambda);
        return (mixed.MoveToOuterDisposeScope(), mixedTargets.MoveToOuterDisposeScope());
    }

    /// <summary>Draws and applies in one call.</summary>
    public (Tensor Images, Tensor Targets, MixingDecision Decision) Mix(Tensor images, Tensor labels, AugmentationRandom random)
    {
        var d = Sample((int)images.shape[0], (int)images.shape[2], (int)images.shape[3], random);
        var (x, y) = Apply(images, labels, d);
        return (x, y, d);
    }

    /// <summary>
    /// Soft targets: int64 class indices become one-hot rows with label smoothing ε (<c>1−ε+ε/C</c> on the class,
    /// <c>ε/C</c> elsewhere); float <c>N×C</c> inputs are smoothed the same way (<c>(1−ε)·y + ε/C</c>).
    /// </summary>
    public static Tensor ToTargets(Tensor labels, int numberOfClasses, double smoothing = 0, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (!(smoothing >= 0 && smoothing < 1)) throw new ArgumentOutOfRangeException(nameof(smoothing), smoothing, "Must be in [0, 1).");
        using var scope = NewDisposeScope();
        Tensor soft;
        if (labels.dim() == 1 && labels.dtype == ScalarType.Int64)
        {
            if (labels.numel() > 0 && (labels.min().item<long>() < 0 || labels.max().item<long>() >= numberOfClasses))
                throw new ArgumentException($"Labels must be class indices in [0, {numberOfClasses}).", nameof(labels));
            soft = nn.functional.one_hot(labels, numberOfClasses).to(ScalarType.Float32);
        }
        else if (labels.dim() == 2 && labels.shape[1] == numberOfClasses && labels.is_floating_point())
        {
            soft = labels.to(ScalarType.Float32);
        }
        else
        {
            throw new ArgumentException($"Labels must be N int64 indices or N×{numberOfClasses} float targets (got {labels.dtype} [{string.Join(", ", labels.shape)}]).", nameof(labels));
        }
        if (smoothing > 0) soft = soft * (1 - smoothing) + smoothing / numberOfClasses;
        if (device is not null) soft = soft.to(device);
        return soft.MoveToOuterDisposeScope();
    }
}
