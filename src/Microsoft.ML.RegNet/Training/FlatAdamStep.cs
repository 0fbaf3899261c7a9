using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Training;

/// <summary>
/// Adam's update (with the trainer's weight decay) over contiguous buffers. The parameters, their gradients and Adam's two
/// moments are re-pointed (libtorch's <c>set_</c>) into one flat buffer each, in the same order, so a step costs a dozen
/// tensor operations per run of neighbouring parameters that share a learning rate, a decay and a step count, instead of
/// about ten per parameter: RegNetX-002 has 134 parameter tensors, 119 of them below libtorch's grain for splitting an
/// operation across threads, so per parameter most operations run on one thread. This is the idea of PyTorch's multi-tensor ("foreach") and fused Adam, which TorchSharp does not
/// have. The arithmetic is TorchSharp's Adam's, operation for operation, so the weights are the same; TorchSharp's
/// optimizer keeps owning the state (its step counts, checkpoints and broadcasts read and write the moments in place).
/// Gradients stay views of the flat buffer: they are zeroed in place (<see cref="ZeroGradients"/>), never dropped.
/// </summary>
internal sealed class FlatAdamStep : IDisposable
{
    private readonly Entry[] _entries;
    private readonly Tensor _parameters, _gradients, _firstMoments, _secondMoments;
    private readonly WeightDecay _decay;

    private sealed record Entry(Parameter Parameter, Adam.State State, Adam.ParamGroup Group, bool Decayed, long Offset, long Count);

    private FlatAdamStep(Entry[] entries, Tensor parameters, Tensor gradients, Tensor firstMoments, Tensor secondMoments, WeightDecay decay)
    {
        (_entries, _parameters, _gradients, _firstMoments, _secondMoments, _decay) = (entries, parameters, gradients, firstMoments, secondMoments, decay);
    }

    /// <summary>The flat step for <paramref name="optimizer"/>, or null where it does not apply: not TorchSharp's Adam, an
    /// Adam variant it does not reproduce (AMSGrad, maximize, Adam's own weight decay), or parameters of several devices or
    /// types. Call it once the weights and the optimizer state are final (loaded, resumed), before the first step.</summary>
    public static FlatAdamStep? TryCreate(OptimizerHelper optimizer, WeightDecay decay)
    {
        if (optimizer is not Adam adam) return null;
        var groups = adam.ParamGroups.Cast<Adam.ParamGroup>().ToList();
        if (groups.Any(g => g.Options.amsgrad == true || g.Options.maximize == true || g.Options.weight_decay is not (null or 0.0))) return null;
        var states = adam.state_dict().State;
        var parameters = groups.SelectMany(g => g.Parameters.Select(p => (Parameter: p, Group: g))).ToList();
        if (parameters.Count == 0 || states.Count != parameters.Count) return null;
        var first = parameters[0].Parameter;
        if (parameters.Any(p => p.Parameter.dtype != first.dtype || p.Parameter.device_type != first.device_type || p.Parameter.device_index != first.device_index || !p.Parameter.is_contiguous())) return null;

        // Decayed parameters of a group first, so that runs of one kind are long.
        var order = Enumerable.Range(0, parameters.Count)
            .OrderBy(i => groups.IndexOf(parameters[i].Group)).ThenBy(i => decay.Decays(parameters[i].Parameter) ? 0 : 1).ThenBy(i => i).ToList();
        long total = parameters.Sum(p => p.Parameter.numel());
        var flat = Enumerable.Range(0, 4).Select(_ => zeros(total, first.dtype, device: first.device).DetachFromDisposeScope()).ToArray();
        var entries = new List<Entry>();
        long offset = 0;
        using (no_grad())
        using (NewDisposeScope())
        {
            foreach (int i in order)
            {
                var (p, group) = parameters[i];
                var state = (Adam.State)states[i];
                long count = p.numel();
                Repoint(p, flat[0], offset, count);
                Repoint(state.exp_avg, flat[2], offset, count);
                Repoint(state.exp_avg_sq, flat[3], offset, count);
                entries.Add(new Entry(p, state, group, decay.Decays(p), offset, count));
                offset += count;
            }
        }
        var step = new FlatAdamStep(entries.ToArray(), flat[0], flat[1], flat[2], flat[3], decay);
        step.AttachGradients();
        return step;
    }

    // The tensor's values move into its slice of the flat buffer and the tensor becomes that slice (same object: modules
    // and the optimizer keep their references).
    private static void Repoint(Tensor tensor, Tensor flat, long offset, long count)
    {
        var slice = flat.narrow(0, offset, count).view(tensor.shape);
        slice.copy_(tensor);
        tensor.set_(slice);
    }

    /// <summary>Makes the gradient of every parameter that trains its slice of the flat gradient buffer (again after
    /// unfreezing: parameters that start to train get theirs).</summary>
    public void AttachGradients()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var e in _entries)
        {
            if (!e.Parameter.requires_grad) continue;
            var slice = _gradients.narrow(0, e.Offset, e.Count).view(e.Parameter.shape);
            if (e.Parameter.grad is { } existing) slice.copy_(existing);
            e.Parameter.grad = slice;
        }
    }

    /// <summary>Zeroes every gradient, in place.</summary>
    public void ZeroGradients()
    {
        using var noGrad = no_grad();
        _gradients.zero_();
    }

    /// <summary>Weight decay, then Adam's update, of every parameter that trains (frozen ones keep their values and step counts).</summary>
    public void Step()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        int start = 0;
        while (start < _entries.Length)
        {
            var head = _entries[start];
            int end = start + 1;
            bool trains = head.Parameter.requires_grad;
            while (end < _entries.Length && SameRun(head, _entries[end], trains)) end++;
            if (trains) Update(start, end);
            start = end;
        }
    }

    private static bool SameRun(Entry head, Entry next, bool headTrains) =>
        next.Group == head.Group && next.Decayed == head.Decayed && next.State.step == head.State.step && next.Parameter.requires_grad == headTrains;

    // TorchSharp's Adam.step for entries [start, end), on their joint slices.
    private void Update(int start, int end)
    {
        long offset = _entries[start].Offset, count = _entries[end - 1].Offset + _entries[end - 1].Count - offset;
        var parameters = _parameters.narrow(0, offset, count);
        var gradients = _gradients.narrow(0, offset, count);
        var group = _entries[start].Group;
        double lr = group.LearningRate;
        if (_entries[start].Decayed) _decay.ApplyTo(parameters, gradients, lr);

        var options = group.Options;
        double beta1 = options.beta1!.Value, beta2 = options.beta2!.Value, eps = options.eps!.Value;
        for (int i = start; i < end; i++) _entries[i].State.step += 1;
        long step = _entries[start].State.step;
        double biasCorrection1 = 1 - Math.Pow(beta1, step);
        double biasCorrection2 = 1 - Math.Pow(beta2, step);
        var exp_avg = _firstMoments.narrow(0, offset, count);
        var exp_avg_sq = _secondMoments.narrow(0, offset, count);
        exp_avg.mul_(beta1).add_(gradients, alpha: 1 - beta1);
        exp_avg_sq.mul_(beta2).addcmul_(gradients, gradients, value: 1 - beta2);
        var denominator = (exp_avg_sq.sqrt() / Math.Sqrt(biasCorrection2)).add_(eps);
        parameters.addcdiv_(exp_avg, denominator, value: -(lr / biasCorrection1));
    }

    /// <summary>Releases the flat buffers' own handles; the parameters, gradients and moments that are views of them keep
    /// the memory alive.</summary>
    public void Dispose()
    {
        _parameters.Dispose();
        _gradients.Dispose();
        _firstMoments.Dispose();
        _secondMoments.Dispose();
    }
}
