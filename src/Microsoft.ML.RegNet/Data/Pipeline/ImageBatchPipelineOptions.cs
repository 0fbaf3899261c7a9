using Microsoft.ML.RegNet.Data.Transforms;

namespace Microsoft.ML.RegNet.Data.Pipeline;

/// <summary>Settings of <see cref="ImageBatchPipeline"/>.</summary>
internal sealed record ImageBatchPipelineOptions
{
    /// <summary>Image column: an <c>MLImage</c> column (from <c>LoadImages</c>) or a variable-length byte vector of encoded
    /// files (from <c>LoadRawImageBytes</c>; faster, because decoding then runs on the worker threads).</summary>
    public string ImageColumnName { get; init; } = "Image";

    /// <summary>Key-typed label column (1-based keys; key 0 = missing label, a bad row). Null: no labels.</summary>
    public string? LabelColumnName { get; init; } = "Label";

    /// <summary>Images per batch.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Output side (images are <c>ImageSize×ImageSize</c>).</summary>
    public int ImageSize { get; init; } = 224;

    /// <summary>Per-image augmentation (training or evaluation).</summary>
    public AugmentationOptions Augmentation { get; init; } = AugmentationOptions.Training();

    /// <summary>Normalisation of the output tensor (from the weights' <see cref="PreprocessingSpec"/>).</summary>
    public ImageNormalization Normalization { get; init; } = ImageNormalization.ImageNet;

    /// <summary>Seed of every random decision; a sample's randomness is a function of (seed, epoch, row index).</summary>
    public int Seed { get; init; }

    /// <summary>Decode/augment threads (all cores by default). Results do not depend on it.</summary>
    public int WorkerThreads { get; init; } = Environment.ProcessorCount;

    /// <summary>Batches prepared ahead of the consumer (bounded memory: about <c>PrefetchBatches + WorkerThreads</c> batches live).</summary>
    public int PrefetchBatches { get; init; } = Math.Max(2, Environment.ProcessorCount);

    /// <summary>Shuffle rows through a buffer of <see cref="ShufflePoolSize"/> rows (deterministic per seed and epoch).</summary>
    public bool Shuffle { get; init; }

    /// <summary>Rows held by the shuffle buffer (encoded bytes for byte columns, decoded pixels for image columns).</summary>
    public int ShufflePoolSize { get; init; } = 2048;

    /// <summary>Drop the last batch when it has fewer than <see cref="BatchSize"/> rows.</summary>
    public bool DropLast { get; init; }

    /// <summary>Fail (default) or skip rows whose image cannot be used.</summary>
    public BadImagePolicy BadImagePolicy { get; init; } = BadImagePolicy.FailOnBadImage;

    /// <summary>
    /// Training settings for a set of weights: size and normalisation from their <see cref="PreprocessingSpec"/>, the seed
    /// trainer's augmentation with <paramref name="areaFactor"/>, shuffling on.
    /// </summary>
    public static ImageBatchPipelineOptions ForTraining(PreprocessingSpec spec, double areaFactor = 0.08, int batchSize = 32, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new ImageBatchPipelineOptions
        {
            BatchSize = batchSize,
            ImageSize = spec.ImageSize,
            Normalization = spec.Normalization,
            Augmentation = AugmentationOptions.Training(areaFactor) with { CropFraction = spec.CropFraction },
            Seed = seed,
            Shuffle = true,
        };
    }

    /// <summary>Evaluation settings for a set of weights: resize + centre crop from their <see cref="PreprocessingSpec"/>, no shuffling.</summary>
    public static ImageBatchPipelineOptions ForEvaluation(PreprocessingSpec spec, int batchSize = 32)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new ImageBatchPipelineOptions
        {
            BatchSize = batchSize,
            ImageSize = spec.ImageSize,
            Normalization = spec.Normalization,
            Augmentation = AugmentationOptions.Evaluation(spec.CropFraction),
        };
    }

    /// <summary>Data-parallel training: the rows this rank reads (null: all rows).</summary>
    internal RowShard? Shard { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (string.IsNullOrEmpty(ImageColumnName)) throw new ArgumentException("ImageColumnName must be set.", nameof(ImageColumnName));
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be positive.");
        if (ImageSize < 1) throw new ArgumentOutOfRangeException(nameof(ImageSize), ImageSize, "ImageSize must be positive.");
        if (WorkerThreads < 1) throw new ArgumentOutOfRangeException(nameof(WorkerThreads), WorkerThreads, "WorkerThreads must be positive.");
        if (PrefetchBatches < 1) throw new ArgumentOutOfRangeException(nameof(PrefetchBatches), PrefetchBatches, "PrefetchBatches must be positive.");
        if (Shuffle && ShufflePoolSize < 1) throw new ArgumentOutOfRangeException(nameof(ShufflePoolSize), ShufflePoolSize, "ShufflePoolSize must be positive.");
        ArgumentNullException.ThrowIfNull(Augmentation);
        ArgumentNullException.ThrowIfNull(Normalization);
        Augmentation.Validate();
    }
}
