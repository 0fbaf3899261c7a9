namespace Microsoft.ML.RegNet;

/// <summary>Where a published RegNet weight file comes from.</summary>
public enum PretrainedSource
{
    /// <summary>keras.applications, with the classifier (<c>regnetx002.h5</c>); SHA-256 published by Keras.</summary>
    Keras,
    /// <summary>keras.applications without the classifier (<c>regnetx002_notop.h5</c>); SHA-256 published by Keras.</summary>
    KerasNoTop,
    /// <summary>The paper's pycls checkpoints (BGR input; converted to RGB on load). No hash is published.</summary>
    Pycls,
    /// <summary>timm's copies of the pycls weights on the Hugging Face Hub (<c>timm/regnetx_002.pycls_in1k</c>, RGB). No hash is published.</summary>
    Timm,
    /// <summary>torchvision V1 weights ("reproduce paper" recipe); the file name carries the first 8 hex digits of the SHA-256.</summary>
    TorchVisionV1,
    /// <summary>torchvision V2 weights (new recipe, <c>DEFAULT</c>); the file name carries the first 8 hex digits of the SHA-256.</summary>
    TorchVisionV2,
}

/// <summary>The published files of one of the 24 models: Keras, pycls, timm and torchvision.</summary>
/// <param name="Model">Keras name, e.g. <c>RegNetX002</c>.</param>
/// <param name="KerasSha256">SHA-256 of <c>{model}.h5</c>.</param>
/// <param name="KerasNoTopSha256">SHA-256 of <c>{model}_notop.h5</c>.</param>
/// <param name="PyclsPath">Path under pycls's dds_baselines, e.g. <c>160905981/RegNetX-200MF_dds_8gpu.pyth</c>.</param>
/// <param name="TimmHubId">Hugging Face Hub id of timm's copy.</param>
/// <param name="TorchVisionV1">torchvision V1 file name, or null (torchvision has 14 of the 24 models).</param>
/// <param name="TorchVisionV2">torchvision V2 file name, or null.</param>
public sealed record PretrainedEntry(string Model, string KerasSha256, string KerasNoTopSha256, string PyclsPath, string TimmHubId,
    string? TorchVisionV1, string? TorchVisionV2)
{
    /// <summary>torchvision rounds the widths of these three differently (regnet_x_400mf, regnet_y_800mf, regnet_y_8gf).</summary>
    public bool TorchVisionRoundingDiffers => Model is "RegNetX004" or "RegNetY008" or "RegNetY080";
}

/// <summary>One downloadable file: where it is, what it is called, how to verify it and how to feed it.</summary>
/// <param name="Model">Keras model name.</param>
/// <param name="Source">The ecosystem.</param>
/// <param name="Url">Download address.</param>
/// <param name="FileName">Local file name (in the cache and in an offline directory).</param>
/// <param name="Sha256">Full SHA-256 (lower-case hex) when published.</param>
/// <param name="Sha256Prefix">Leading hex digits of the SHA-256 (torch.hub file-name convention) when only that is known.</param>
/// <param name="Preprocessing">What the weights expect after loading (pycls is converted to RGB by default).</param>
/// <param name="Rounding">Width rounding of the architecture these weights belong to.</param>
public sealed record PretrainedFile(string Model, PretrainedSource Source, Uri Url, string FileName, string? Sha256, string? Sha256Prefix,
    PreprocessingSpec Preprocessing, WidthRounding Rounding)
{
    /// <summary>True when the download can be checked against a published hash (full or prefix).</summary>
    public bool IsVerifiable => Sha256 is not null || Sha256Prefix is not null;
}

/// <summary>The published pretrained files for the 24 RegNetX/RegNetY models, as data.</summary>
public static class PretrainedCatalog
{
    /// <summary>Where keras.applications publishes the RegNet <c>.h5</c> files.</summary>
    public const string KerasBaseUrl = "https://storage.googleapis.com/tensorflow/keras-applications/regnet/";
    /// <summary>Where pycls publishes its checkpoints (the paper's weights).</summary>
    public const string PyclsBaseUrl = "https://dl.fbaipublicfiles.com/pycls/dds_baselines/";
    /// <summary>Where torchvision publishes its weight files.</summary>
    public const string TorchVisionBaseUrl = "https://download.pytorch.org/models/";
    /// <summary>The Hugging Face Hub, where timm's copies live.</summary>
    public const string HuggingFaceBaseUrl = "https://huggingface.co/";

    /// <summary>All 24 entries in Keras order.</summary>
    public static IReadOnlyList<PretrainedEntry> Entries { get; } = new PretrainedEntry[]
    {
        new("RegNetX002", "49fb46e56cde07fdaf57bffd851461a86548f6a3a4baef234dd37290b826c0b8", "5445b66cd50445eb7ecab094c1e78d4d3d29375439d1a7798861c4af15ffff21", "160905981/RegNetX-200MF_dds_8gpu.pyth", "timm/regnetx_002.pycls_in1k", null, null),
        new("RegNetX004", "3523c7f5ac0dbbcc2fd6d83b3570e7540f7449d3301cc22c29547302114e4088", "de139bf07a66c9256f2277bf5c1b6dd2d5a3a891a5f8a925a10c8a0a113fd6f3", "160905967/RegNetX-400MF_dds_8gpu.pyth", "timm/regnetx_004.pycls_in1k", "regnet_x_400mf-adf1edd5.pth", "regnet_x_400mf-62229a5f.pth"),
        new("RegNetX006", "340216ef334a7bae30daac9f414e693c136fac9ab868704bbfcc9ce6a5ec74bb", "a43ec97ad62f86b2a96a783bfdc63a5a54de02eef54f26379ea05e1bf90a9505", "160906442/RegNetX-600MF_dds_8gpu.pyth", "timm/regnetx_006.pycls_in1k", null, null),
        new("RegNetX008", "8f145d6a5fae6da62677bb8d26eb92d0b9dfe143ec1ebf68b24a57ae50a2763d", "3c7e4b0917359304dc18e644475c5c1f5e88d795542b676439c4a3acd63b7207", "160906036/RegNetX-800MF_dds_8gpu.pyth", "timm/regnetx_008.pycls_in1k", "regnet_x_800mf-ad17e45c.pth", "regnet_x_800mf-94a99ebd.pth"),
        new("RegNetX016", "31c386f4c7bfef4c021a583099aa79c1b3928057ba1b7d182f174674c5ef3510", "1b8e3d545d190271204a7b2165936a227d26b79bb7922bac5ee4d303091bf17a", "160990626/RegNetX-1.6GF_dds_8gpu.pyth", "timm/regnetx_016.pycls_in1k", "regnet_x_1_6gf-e3633e7f.pth", "regnet_x_1_6gf-a12f2b72.pth"),
        new("RegNetX032", "6c025df1409e5ea846375bc9dfa240956cca87ef57384d93fef7d6fa90ca8c7f", "9cd4522806c0fcca01b37874188b2bd394d7c419956d77472a4e072b01d99041", "160906139/RegNetX-3.2GF_dds_8gpu.pyth", "timm/regnetx_032.pycls_in1k", "regnet_x_3_2gf-f342aeae.pth", "regnet_x_3_2gf-7071aa85.pth"),
        new("RegNetX040", "ba128046c588a26dbd3b3a011b26cb7fa3cf8f269c184c132372cb20b6eb54c1", "b4ed0ca0b9a98e789e05000e830403a7ade4d8afa01c73491c44610195198afe", "160906383/RegNetX-4.0GF_dds_8gpu.pyth", "timm/regnetx_040.pycls_in1k", null, null),
        new("RegNetX064", "0f4489c3cd3ad979bd6b0324213998bcb36dc861d178f977997ebfe53c3ba564", "3e706fa416a18dfda14c713423eba8041ae2509db3e0a611d5f599b5268a46c4", "161116590/RegNetX-6.4GF_dds_8gpu.pyth", "timm/regnetx_064.pycls_in1k", null, null),
        new("RegNetX080", "76320e43272719df648db37271a247c22eb6e810fe469c37a5db7e2cb696d162", "7b1ce8e29ceefec10a6569640ee329dba7fbc98b5d0f6346aabade058b66cf29", "161107726/RegNetX-8.0GF_dds_8gpu.pyth", "timm/regnetx_080.pycls_in1k", "regnet_x_8gf-03ceed89.pth", "regnet_x_8gf-2b70d774.pth"),
        new("RegNetX120", "5cafc461b78897d5e4f24e68cb406d18e75f31105ef620e7682b611bb355eb3a", "36174ddd0299db04a42631d028abcb1cc7afec2b705e42bd28fcd325e5d596bf", "160906020/RegNetX-12GF_dds_8gpu.pyth", "timm/regnetx_120.pycls_in1k", null, null),
        new("RegNetX160", "8093f57a5824b181fb734ea21ae34b1f7ee42c5298e63cf6d587c290973195d2", "9d1485050bdf19531ffa1ed7827c75850e0f2972118a996b91aa9264b088fd43", "158460855/RegNetX-16GF_dds_8gpu.pyth", "timm/regnetx_160.pycls_in1k", "regnet_x_16gf-2007eb11.pth", "regnet_x_16gf-ba3796d7.pth"),
        new("RegNetX320", "91fb3e6f4e9e44b3687e80977f7f4412ee9937c0c704232664fc83e4322ea01e", "9db7eacc37b85c98184070e1a172e6104c00846f44bcd4e727da9e50d9692398", "158188473/RegNetX-32GF_dds_8gpu.pyth", "timm/regnetx_320.pycls_in1k", "regnet_x_32gf-9d47f8d0.pth", "regnet_x_32gf-6eb8fdc6.pth"),
        new("RegNetY002", "1e8091c674532b1a61c04f6393a9c570113e0197f22bd1b98cc4c4fe800c6465", "f63221f63d625b8e201221499682587bfe29d33f50a4c4f4d53be00f66c0f12c", "176245422/RegNetY-200MF_dds_8gpu.pyth", "timm/regnety_002.pycls_in1k", null, null),
        new("RegNetY004", "752fdbad21c78911bf1dcb8c513e5a0e14697b068e5d9e73525dbaa416d18d8e", "45e6ba8309a17a77e67afc05228454b2e0ee6be0dae65edc0f31f1da10cc066b", "160906449/RegNetY-400MF_dds_8gpu.pyth", "timm/regnety_004.pycls_in1k", "regnet_y_400mf-c65dace8.pth", "regnet_y_400mf-e6988f5f.pth"),
        new("RegNetY006", "98942e07b273da500ff9699a1f88aca78dfad4375faabb0bab784bb0dace80a9", "b70261cba4e60013c99d130cc098d2fce629ff978a445663b6fa4f8fc099a2be", "160981443/RegNetY-600MF_dds_8gpu.pyth", "timm/regnety_006.pycls_in1k", null, null),
        new("RegNetY008", "1b099377cc9a4fb183159a6f9b24bc998e5659d25a449f40c90cbffcbcfdcae4", "b11f5432a216ee640fe9be6e32939defa8d08b8d136349bf3690715a98752ca1", "160906567/RegNetY-800MF_dds_8gpu.pyth", "timm/regnety_008.pycls_in1k", "regnet_y_800mf-1b27b58c.pth", "regnet_y_800mf-58fc7688.pth"),
        new("RegNetY016", "b7ce1f5e223f0941c960602de922bcf846288ce7a4c33b2a4f2e4ac4b480045b", "d7404f50205e82d793e219afb9eb2bfeb781b6b2d316a6128c6d7d7dacab7f57", "160906681/RegNetY-1.6GF_dds_8gpu.pyth", "timm/regnety_016.pycls_in1k", "regnet_y_1_6gf-b11a554e.pth", "regnet_y_1_6gf-0d7bc02a.pth"),
        new("RegNetY032", "6a6a545cf3549973554c9b94f0cd40e25f229fffb1e7f7ac779a59dcbee612bd", "eb3ac1c45ec60f4f031c3f5180573422b1cf7bebc26c004637517372f68f8937", "160906834/RegNetY-3.2GF_dds_8gpu.pyth", "timm/regnety_032.pycls_in1k", "regnet_y_3_2gf-b5a9779c.pth", "regnet_y_3_2gf-9180c971.pth"),
        new("RegNetY040", "98d00118b335162bbffe8f1329e54e5c8e75ee09b2a5414f97b0ddfc56e796f6", "b5be2a5e5f072ecdd9c0b8a437cd896df0efa1f6a1f77e41caa8719b7dfcb05d", "160906838/RegNetY-4.0GF_dds_8gpu.pyth", "timm/regnety_040.pycls_in1k", null, null),
        new("RegNetY064", "65c948c7a18aaecaad2d1bd4fd978987425604ba6669ef55a1faa0069a2804b7", "885c4b7ed7ea339daca7dafa1a62cb7d41b1068897ef90a5a3d71b4a2e2db31a", "160907112/RegNetY-6.4GF_dds_8gpu.pyth", "timm/regnety_064.pycls_in1k", null, null),
        new("RegNetY080", "7a2c62da2982e369a4984d3c7c3b32d6f8d3748a71cb37a31156c436c37f3e95", "3d119577e1e3bf8d153b895e8ea9e4ec150ff2d92abdca711b6e949c3fd7115d", "161160905/RegNetY-8.0GF_dds_8gpu.pyth", "timm/regnety_080.pycls_in1k", "regnet_y_8gf-d0d0e4a8.pth", "regnet_y_8gf-dc2b1b54.pth"),
        new("RegNetY120", "a96ab0d27d3ae35a422ee7df0d789069b3e3217a99334e0ce861a96595bc5986", "4a6fa387108380b730b71feea2ad80b5224b5ea9dc21dc156c93fe3c6186485c", "160907100/RegNetY-12GF_dds_8gpu.pyth", "timm/regnety_120.pycls_in1k", null, null),
        new("RegNetY160", "45067240ffbc7ca2591313fee2f80dbdda6d66ec1a7451446f9a6d00d8f7ac6e", "ead1e6b568be8f34447ec8941299a9df4368736ba9a8205de5427fa20a1fb316", "161303400/RegNetY-16GF_dds_8gpu.pyth", "timm/regnety_160.pycls_in1k", "regnet_y_16gf-9e6ed7dd.pth", "regnet_y_16gf-3e4a00f9.pth"),
        new("RegNetY320", "b05e173e4ae635cfa22d06392ee3741284d17dadfee68f2aa6fd8cb2b7561112", "cad78f74a586e24c61d38be17f3ae53bb9674380174d2585da1a526b8c20e1fd", "161277763/RegNetY-32GF_dds_8gpu.pyth", "timm/regnety_320.pycls_in1k", "regnet_y_32gf-4dee3f7a.pth", "regnet_y_32gf-8db6d4b5.pth"),
    };

    /// <summary>The entry of a model, by any name <see cref="RegNetSpec.FromName"/> accepts (X002, RegNetX002, regnetx_002, RegNetX-200MF).</summary>
    /// <exception cref="ArgumentException">Unknown model.</exception>
    public static PretrainedEntry Find(string model)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        if (!RegNetZoo.TryFind(model, out var zoo))
            throw new ArgumentException($"Unknown RegNet model '{model}'. Valid names: {RegNetZoo.ValidNames}.", nameof(model));
        return Entries.Single(e => e.Model == zoo.KerasName);
    }

    /// <summary>The file of <paramref name="model"/> from <paramref name="source"/>.</summary>
    /// <exception cref="ArgumentException">Unknown model, or torchvision does not publish this model.</exception>
    public static PretrainedFile File(string model, PretrainedSource source)
    {
        var e = Find(model);
        string lower = e.Model.ToLowerInvariant();
        switch (source)
        {
            case PretrainedSource.Keras:
                return new(e.Model, source, new Uri(KerasBaseUrl + lower + ".h5"), lower + ".h5", e.KerasSha256, null, PreprocessingSpec.Keras, WidthRounding.Nearest);
            case PretrainedSource.KerasNoTop:
                return new(e.Model, source, new Uri(KerasBaseUrl + lower + "_notop.h5"), lower + "_notop.h5", e.KerasNoTopSha256, null, PreprocessingSpec.Keras, WidthRounding.Nearest);
            case PretrainedSource.Pycls:
                return new(e.Model, source, new Uri(PyclsBaseUrl + e.PyclsPath), e.PyclsPath[(e.PyclsPath.IndexOf('/') + 1)..], null, null,
                    PreprocessingSpec.ImageNet, WidthRounding.Nearest);
            case PretrainedSource.Timm:
                return new(e.Model, source, new Uri($"{HuggingFaceBaseUrl}{e.TimmHubId}/resolve/main/model.safetensors"),
                    e.TimmHubId["timm/".Length..] + ".safetensors", null, null, PreprocessingSpec.ImageNet with { Interpolation = Interpolation.Bicubic },
                    WidthRounding.Nearest);
            case PretrainedSource.TorchVisionV1:
            case PretrainedSource.TorchVisionV2:
                string? name = source == PretrainedSource.TorchVisionV1 ? e.TorchVisionV1 : e.TorchVisionV2;
                if (name is null)
                    throw new ArgumentException($"torchvision publishes no weights for {e.Model}; use Keras, Pycls or Timm.", nameof(source));
                string prefix = name[(name.LastIndexOf('-') + 1)..^".pth".Length];
                var pre = source == PretrainedSource.TorchVisionV2
                    ? PreprocessingSpec.ImageNet with { CropFraction = 224.0 / 232.0 } : PreprocessingSpec.ImageNet;
                return new(e.Model, source, new Uri(TorchVisionBaseUrl + name), name, null, prefix, pre,
                    e.TorchVisionRoundingDiffers ? WidthRounding.TorchVision : WidthRounding.Nearest);
            default:
                throw new ArgumentOutOfRangeException(nameof(source));
        }
    }
}
