using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Distributed;

/// <summary>
/// BatchNorm over the whole global batch of a data-parallel step, as PyTorch's SyncBatchNorm does it on the CPU: each
/// rank's per-channel count, sum and sum of squares are summed over the ranks (one allreduce in the forward pass), and
/// the backward pass sums Σdy and Σdy·(x − mean) the same way, so the gradient reaching every rank's input is that of
/// one process normalising all ranks' images together. The layer's weight and bias gradients stay local (the gradient
/// averaging sums them), and its running statistics follow the global mean and unbiased variance, equal on every rank.
/// </summary>
internal sealed class SyncBatchNorm
{
    private readonly MpiWorld _world;
    private readonly Stopwatch _communication = new();

    public SyncBatchNorm(MpiWorld world) => _world = world;

    /// <summary>Time spent in the statistics allreduces so far.</summary>
    public TimeSpan Communication => _communication.Elapsed;

    /// <summary>Normalises <paramref name="input"/> (N, C, H, W) in training mode with <paramref name="norm"/>'s parameters and
    /// the global batch statistics, and updates the layer's running statistics.</summary>
    public Tensor Forward(Tensor input, BatchNorm2d norm)
    {
        if (input.dtype != ScalarType.Float32 || input.device_type != DeviceType.CPU)
            throw new NotSupportedException($"SyncBatchNorm normalises float32 CPU tensors; the input is {input.dtype} on {input.device_type}.");
        var statistics = Reduce(input);
        UpdateRunningStatistics(norm, statistics);
        using var mean = tensor(statistics.Mean, device: input.device).to(ScalarType.Float32);
        using var invstd = tensor(statistics.Variance.Select(v => 1.0 / Math.Sqrt(v + norm.eps)).ToArray(), device: input.device).to(ScalarType.Float32);
        return Function.apply(input, norm.weight!, norm.bias!, mean, invstd, this, statistics.Count);
    }

    // Per-channel count, Σx and Σx² accumulated in double (as libtorch's own CPU BatchNorm accumulates), summed over the ranks.
    private Statistics Reduce(Tensor input)
    {
        long channels = input.shape[1];
        var dims = new long[] { 0, 2, 3 };
        using var scope = NewDisposeScope();
        var local = cat(new[] { input.sum(dims, type: ScalarType.Float64), input.square().sum(dims, type: ScalarType.Float64) });
        double[] sums = new double[1 + 2 * channels];
        sums[0] = input.numel() / channels;
        local.data<double>().CopyTo(sums.AsSpan(1));
        Allreduce(sums);
        double total = sums[0];
        var mean = new double[channels];
        var variance = new double[channels];
        for (int c = 0; c < channels; c++)
        {
            mean[c] = sums[1 + c] / total;
            variance[c] = Math.Max(sums[1 + channels + c] / total - mean[c] * mean[c], 0);
        }
        return new Statistics(total, mean, variance);
    }

    private void Allreduce(double[] values)
    {
        _communication.Start();
        _world.AllreduceSum(values.AsSpan());
        _communication.Stop();
    }

    private static void UpdateRunningStatistics(BatchNorm2d norm, Statistics statistics)
    {
        double momentum = norm.momentum ?? throw new NotSupportedException("SyncBatchNorm needs a BatchNorm momentum (a cumulative average has none).");
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var device = norm.running_mean!.device;
        double unbiased = statistics.Count > 1 ? statistics.Count / (statistics.Count - 1) : 1.0;
        norm.running_mean.mul_(1 - momentum).add_(tensor(statistics.Mean, device: device).to(ScalarType.Float32), alpha: momentum);
        norm.running_var!.mul_(1 - momentum).add_(tensor(statistics.Variance, device: device).to(ScalarType.Float32).mul(unbiased), alpha: momentum);
        norm.num_batches_tracked?.add_(1);
    }

    private sealed record Statistics(double Count, double[] Mean, double[] Variance);

    private sealed class Function : autograd.SingleTensorFunction<Function>
    {
        public override string Name => nameof(SyncBatchNorm);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (input, weight, bias, mean, invstd) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3], (Tensor)vars[4]);
            var normalised = (input - mean.view(1, -1, 1, 1)) * invstd.view(1, -1, 1, 1);
            ctx.save_for_backward(new List<Tensor> { normalised, weight, invstd });
            ctx.save_data("sync", vars[5]);
            ctx.save_data("count", vars[6]);
            return normalised * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1);
        }

        // dx = w·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)), the means over every rank's images (sums in double).
        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var (normalised, weight, invstd) = (saved[0], saved[1], saved[2]);
            var sync = (SyncBatchNorm)ctx.get_data("sync");
            double count = (double)ctx.get_data("count");
            var dims = new long[] { 0, 2, 3 };
            var sumDy = gradOutput.sum(dims, type: ScalarType.Float64);
            var sumDyXhat = (gradOutput * normalised).sum(dims, type: ScalarType.Float64);
            // Local weight and bias gradients (the gradient averaging sums them); the input gradient needs every rank's sums.
            var gradWeight = sumDyXhat.to(ScalarType.Float32);
            var gradBias = sumDy.to(ScalarType.Float32);
            var sums = cat(new[] { sumDy, sumDyXhat }).data<double>().ToArray();
            sync.Allreduce(sums);
            var means = (tensor(sums, device: gradOutput.device).view(2, 1, -1, 1, 1) / count).to(ScalarType.Float32);
            var gradInput = (weight * invstd).view(1, -1, 1, 1) * (gradOutput - means[0] - normalised * means[1]);
            return new List<Tensor> { gradInput, gradWeight, gradBias, null!, null!, null!, null! };
        }
    }
}
