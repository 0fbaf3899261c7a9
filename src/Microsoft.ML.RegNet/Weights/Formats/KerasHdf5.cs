using Microsoft.ML.RegNet.Weights.Layouts;
using PureHDF;
using static TorchSharp.torch;

namespace Microsoft.ML.RegNet.Weights.Formats;

/// <summary>One array of a Keras layer.</summary>
internal sealed record KerasWeight(string Name, long[] Shape, float[] Values);

/// <summary>A weight-holding layer of a Keras HDF5 file, in file order.</summary>
internal sealed record KerasFileLayer(string Name, IReadOnlyList<KerasWeight> Weights);

/// <summary>
/// Keras 2 legacy HDF5 weight files (<c>save_weights</c>, and <c>model.save</c> full-model files whose weights sit
/// under <c>model_weights</c>), read with PureHDF: file attribute <c>layer_names</c>, one group per layer with
/// attribute <c>weight_names</c>, arrays at those nested paths.
/// </summary>
internal static class KerasHdf5
{
    private static readonly byte[] Signature = { 0x89, (byte)'H', (byte)'D', (byte)'F', 0x0d, 0x0a, 0x1a, 0x0a };

    /// <summary>True when the HDF5 signature is at offset 0 (or a user-block offset of 512, 1024, 2048 …).</summary>
    public static bool LooksLikeHdf5(string path)
    {
        using var stream = File.OpenRead(path);
        var buffer = new byte[8];
        for (long offset = 0; offset + 8 <= stream.Length && offset <= 1 << 20; offset = offset == 0 ? 512 : offset * 2)
        {
            stream.Position = offset;
            if (stream.ReadAtLeast(buffer, 8, throwOnEndOfStream: false) == 8 && buffer.AsSpan().SequenceEqual(Signature)) return true;
        }
        return false;
    }

    /// <summary>Reads the weight-holding layers in the file's <c>layer_names</c> order.</summary>
    /// <returns>The layers and whether the file is a full-model file (weights under <c>model_weights</c>).</returns>
    /// <exception cref="InvalidDataException">Not a Keras weight file, or truncated.</exception>
    public static (IReadOnlyList<KerasFileLayer> Layers, bool FullModel) Read(string path)
    {
        try
        {
            using var file = H5File.OpenRead(path);
            IH5Group root = file;
            bool fullModel = file.LinkExists("model_weights");
            if (fullModel) root = file.Group("model_weights");
            if (!root.AttributeExists("layer_names"))
                throw new InvalidDataException("the HDF5 file has no 'layer_names' attribute, so it is not a Keras 2 weight file " +
                    "(Keras 3 '.weights.h5' and '.keras' files are not supported; re-save with tf.keras save_weights('x.h5')).");
            var layers = new List<KerasFileLayer>();
            var budget = new SizeBudget(new FileInfo(path).Length);
            foreach (string layerName in ReadStrings(root.Attribute("layer_names")))
            {
                var group = root.Group(layerName);
                if (!group.AttributeExists("weight_names")) continue;
                var weights = new List<KerasWeight>();
                foreach (string weightName in ReadStrings(group.Attribute("weight_names")))
                {
                    var dataset = group.Dataset(weightName);
                    long[] shape = dataset.Space.Dimensions.Select(d => checked((long)d)).ToArray();
                    budget.Take($"{layerName}/{weightName}", shape);
                    float[] values = dataset.Read<float[]>();
                    if (values.LongLength != shape.Aggregate(1L, (a, b) => a * b))
                        throw new InvalidDataException($"dataset {layerName}/{weightName} holds {values.Length} values for shape [{string.Join(", ", shape)}].");
                    weights.Add(new KerasWeight(weightName, shape, values));
                }
                if (weights.Count > 0) layers.Add(new KerasFileLayer(layerName, weights));
            }
            return (layers, fullModel);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
        catch (Exception e) when (e is not OutOfMemoryException and not UnsafePickleException)
        {
            throw new InvalidDataException($"{path}: not a readable Keras HDF5 file (truncated or corrupt?): {e.GetType().Name}: {e.Message}", e);
        }
    }

    /// <summary>Keras writes datasets uncompressed, so together they take about as many bytes as the file; a dataset that
    /// declares far more (a forged dataspace) is refused before it is read. The slack admits small files' overheads.</summary>
    private sealed class SizeBudget(long fileLength)
    {
        private readonly long _limit = 2 * fileLength + (16L << 20);
        private long _total;

        public void Take(string dataset, long[] shape)
        {
            try
            {
                _total = checked(_total + shape.Aggregate((long)sizeof(float), (a, b) => checked(a * b)));
            }
            catch (OverflowException)
            {
                throw new InvalidDataException($"dataset {dataset} declares shape [{string.Join(", ", shape)}], whose size overflows 64 bits.");
            }
            if (_total > _limit)
                throw new InvalidDataException(
                    $"dataset {dataset} declares shape [{string.Join(", ", shape)}], bringing the weights to {_total} bytes as float32 from a file of " +
                    $"{fileLength} bytes; refused before reading it.");
        }
    }

    private static string[] ReadStrings(IH5Attribute attribute)
    {
        // Keras writes these with np.asarray(list of bytes): fixed-length strings, or an empty float64 array for
        // layers without weights.
        ulong count = attribute.Space.Dimensions.Aggregate(1UL, (a, b) => a * b);
        if (count == 0) return Array.Empty<string>();
        if (attribute.Type.Class != H5DataTypeClass.String)
            throw new InvalidDataException($"attribute '{attribute.Name}' holds {attribute.Type.Class} values, not layer or weight names.");
        return attribute.Read<string[]>();
    }

    /// <summary>The model-name prefix of a file: the name of its stem conv without <c>_stem_conv</c>, or null.</summary>
    public static string? Prefix(IReadOnlyList<KerasFileLayer> layers)
    {
        var stem = layers.FirstOrDefault(l => l.Name.EndsWith(KerasLayout.StemConvSuffix, StringComparison.Ordinal));
        return stem?.Name[..^KerasLayout.StemConvSuffix.Length];
    }

    /// <summary>
    /// Pairs the file's layers with <paramref name="spec"/>'s Keras layers and converts them to canonical (timm) tensors.
    /// Body layers are paired by name when the file uses keras.applications names (it has a <c>*_stem_conv</c> layer), else
    /// by position (as Keras' <c>load_weights</c> does); the classifier is always paired by position (the last Dense-shaped layer), since its name is not stable.
    /// File layers that pair with nothing are returned under their Keras names, so a loader reports them as unexpected.
    /// </summary>
    /// <returns>Canonical tensors, whether a classifier was found, and "by name" or "by order".</returns>
    public static (Dictionary<string, Tensor> Tensors, bool HasTop, string Pairing) ToCanonical(IReadOnlyList<KerasFileLayer> fileLayers, RegNetSpec spec)
    {
        TorchRuntime.Configure();
        ArgumentNullException.ThrowIfNull(fileLayers);
        var (pairs, used, pairing) = PairBody(fileLayers, spec);

        // The head: the last remaining layer shaped like a Dense layer (2-D kernel + bias).
        var head = fileLayers.LastOrDefault(l => !used.Contains(l.Name) && l.Weights.Count == 2 && l.Weights[0].Shape.Length == 2);
        if (head is not null)
        {
            pairs.Add((head, new KerasLayer(head.Name, "head.fc", LayerKind.Linear)));
            used.Add(head.Name);
        }

        var tensors = ConvertPairs(pairs, pairing, spec);
        foreach (var file in fileLayers.Where(l => !used.Contains(l.Name)))
            foreach (var w in file.Weights)
                tensors[$"{file.Name}/{LeafName(w.Name)}"] = tensor(w.Values, w.Shape);
        return (tensors, head is not null, pairing);
    }

    // Pairs the file's body layers with the spec's: by name when the file has keras.applications names, else by order.
    private static (List<(KerasFileLayer File, KerasLayer Expected)> Pairs, HashSet<string> Used, string Pairing) PairBody(
        IReadOnlyList<KerasFileLayer> fileLayers, RegNetSpec spec)
    {
        string? filePrefix = Prefix(fileLayers);
        var body = KerasLayout.Layers(spec, filePrefix ?? KerasLayout.ModelPrefix(spec), includeTop: false);
        var pairs = new List<(KerasFileLayer File, KerasLayer Expected)>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        if (filePrefix is null)
        {
            // Renamed layers: pair in order, as Keras' load_weights does.
            for (int i = 0; i < Math.Min(body.Count, fileLayers.Count); i++)
            {
                pairs.Add((fileLayers[i], body[i]));
                used.Add(fileLayers[i].Name);
            }
            return (pairs, used, "by order");
        }

        // keras.applications names: pair by name. Layers the model expects but the file lacks end up missing, and
        // file layers the model lacks end up unexpected, so another architecture is reported tensor by tensor.
        // X and Y blocks differ only in the family letter of their names (and the SE layers), so names are compared
        // without it: an X model meeting a Y file then reports the SE tensors, not every layer.
        static string Key(string name) => name.Replace("_YBlock_", "_XBlock_", StringComparison.Ordinal);
        var byName = fileLayers.GroupBy(l => Key(l.Name), StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        foreach (var l in body)
            if (byName.TryGetValue(Key(l.KerasName), out var file))
            {
                pairs.Add((file, l));
                used.Add(file.Name);
            }
        return (pairs, used, "by name");
    }

    // Converts each paired layer's arrays to canonical tensors, checking their count and names against the layer kind.
    private static Dictionary<string, Tensor> ConvertPairs(List<(KerasFileLayer File, KerasLayer Expected)> pairs, string pairing, RegNetSpec spec)
    {
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (file, expected) in pairs)
        {
            var names = KerasLayout.WeightsOf[expected.Kind];
            if (file.Weights.Count != names.Length)
                throw new InvalidDataException(
                    $"Keras layer '{file.Name}' holds {file.Weights.Count} arrays but is paired ({pairing}) with '{expected.KerasName}' " +
                    $"({expected.Canonical}, {expected.Kind}: {names.Length} arrays). The file was probably saved for another architecture than {spec.Name}.");
            for (int i = 0; i < names.Length; i++)
            {
                var w = file.Weights[i];
                string leaf = LeafName(w.Name);
                if (leaf != names[i])
                    throw new InvalidDataException($"Keras layer '{file.Name}': array {i} is '{w.Name}', expected '{names[i]}' for {expected.Kind}.");
                tensors[$"{expected.Canonical}.{KerasLayout.TensorNames[leaf]}"] = Convert(w, expected.Kind);
            }
        }
        return tensors;
    }

    // "regnetx002_stem_conv/kernel:0" → "kernel".
    private static string LeafName(string weightName)
    {
        string leaf = weightName[(weightName.LastIndexOf('/') + 1)..];
        int colon = leaf.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? leaf : leaf[..colon];
    }

    private static Tensor Convert(KerasWeight w, LayerKind kind)
    {
        using var t = tensor(w.Values, w.Shape);
        return (kind, w.Shape.Length) switch
        {
            (LayerKind.Conv or LayerKind.ConvWithBias, 4) => t.permute(3, 2, 0, 1).contiguous(),
            (LayerKind.Linear, 2) => t.t().contiguous(),
            _ => t.clone(),
        };
    }
}
