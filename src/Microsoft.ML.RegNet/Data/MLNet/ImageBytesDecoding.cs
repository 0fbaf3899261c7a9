using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using Microsoft.ML.Transforms.Image;
using Microsoft.ML.RegNet.Data.MLNet;

namespace Microsoft.ML.RegNet;

/// <summary>
/// Decodes an encoded-image byte column (from <c>LoadRawImageBytes</c>) into an <c>MLImage</c> column with ML.NET's own
/// decoder (<c>MLImage.CreateFromStream</c>, which <c>LoadImages</c> uses too), as an ML.NET custom mapping: ML.NET has no
/// public transform that decodes bytes, and a custom mapping with a contract name can be saved in a model.
/// A process that loads such a model registers this assembly first:
/// <c>mlContext.ComponentCatalog.RegisterAssembly(typeof(RegNetImageBytesDecoder).Assembly)</c>.
/// </summary>
[CustomMappingFactoryAttribute(ContractName)]
public sealed class RegNetImageBytesDecoder : CustomMappingFactory<RegNetImageBytesDecoder.Encoded, RegNetImageBytesDecoder.Decoded>
{
    /// <summary>The contract name stored in saved models.</summary>
    public const string ContractName = "Microsoft.ML.RegNet.ImageBytesDecoder";

    /// <summary>The mapping: bytes → image.</summary>
    public override Action<Encoded, Decoded> GetMapping() => Decode;

    /// <summary>The column the mapping reads (a copy of the user's byte column).</summary>
    internal const string EncodedColumnName = "RegNetEncodedImage";

    /// <summary>The column the mapping writes.</summary>
    internal const string DecodedColumnName = "RegNetDecodedImage";

    /// <summary>The estimators that decode <paramref name="inputColumnName"/> (bytes) into <see cref="DecodedColumnName"/> (an image).</summary>
    internal static IEstimator<ITransformer> Create(MLContext mlContext, string inputColumnName) =>
        mlContext.Transforms.CopyColumns(EncodedColumnName, inputColumnName)
            .Append(mlContext.Transforms.CustomMapping<Encoded, Decoded>(Decode, ContractName));

    private static void Decode(Encoded input, Decoded output)
    {
        var bytes = input.RegNetEncodedImage.DenseValues().ToArray();
        if (bytes.Length == 0)
            throw new InvalidDataException("An encoded image is empty (0 bytes): the file was missing or unreadable when LoadRawImageBytes read it.");
        try
        {
            output.RegNetDecodedImage = MLImage.CreateFromStream(new MemoryStream(bytes, writable: false));
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"An encoded image of {bytes.Length} bytes could not be decoded (unknown format or corrupt): {e.Message}", e);
        }
    }

    /// <summary>Input row of the mapping (an encoded image).</summary>
    public sealed class Encoded
    {
        /// <summary>The file's bytes.</summary>
        [VectorType]
        public VBuffer<byte> RegNetEncodedImage;
    }

    /// <summary>Output row of the mapping (the decoded image).</summary>
    public sealed class Decoded
    {
        /// <summary>The decoded image.</summary>
        // ML.NET cannot give a custom mapping's output an image type of unknown size (it cannot register one), so the
        // column is declared 1×1; the resize step that follows reads each image's real size.
        [ImageType(1, 1)]
        public MLImage? RegNetDecodedImage { get; set; }
    }
}
