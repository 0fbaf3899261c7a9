using System.Security.Cryptography;
using static Microsoft.ML.RegNet.Tests.Weights.WeightFixtures;

namespace Microsoft.ML.RegNet.Tests.Weights;

/// <summary>The catalog as data, and the download path against a server on 127.0.0.1 (no internet needed).</summary>
[TestClass]
public sealed class PretrainedCatalogTests
{
    [TestMethod]
    public void CatalogCoversTheTwentyFourModelsWithKerasHashes()
    {
        Assert.HasCount(24, PretrainedCatalog.Entries);
        CollectionAssert.AreEqual(RegNetZoo.Entries.Select(e => e.KerasName).ToList(), PretrainedCatalog.Entries.Select(e => e.Model).ToList());
        foreach (var e in PretrainedCatalog.Entries)
        {
            Assert.MatchesRegex("^[0-9a-f]{64}$", e.KerasSha256, e.Model);
            Assert.MatchesRegex("^[0-9a-f]{64}$", e.KerasNoTopSha256, e.Model);
            Assert.MatchesRegex(@"^\d+/RegNet[XY]-[0-9.]+(MF|GF)_dds_8gpu\.pyth$", e.PyclsPath, e.Model);
            var zoo = RegNetZoo.Entries.Single(z => z.KerasName == e.Model);
            Assert.AreEqual($"timm/{zoo.TimmName}.pycls_in1k", e.TimmHubId);
            StringAssert.Contains(e.PyclsPath, zoo.PaperName);
        }
        Assert.AreEqual(14, PretrainedCatalog.Entries.Count(e => e.TorchVisionV1 is not null && e.TorchVisionV2 is not null));
        Assert.AreEqual(24 * 2, PretrainedCatalog.Entries.SelectMany(e => new[] { e.KerasSha256, e.KerasNoTopSha256 }).Distinct().Count());
    }

    [TestMethod]
    public void FilesCarryUrlsHashesPreprocessingAndRounding()
    {
        var keras = PretrainedCatalog.File("X002", PretrainedSource.Keras);
        Assert.AreEqual("https://storage.googleapis.com/tensorflow/keras-applications/regnet/regnetx002.h5", keras.Url.ToString());
        Assert.AreEqual("49fb46e56cde07fdaf57bffd851461a86548f6a3a4baef234dd37290b826c0b8", keras.Sha256);
        Assert.AreEqual(PreprocessingSpec.Keras, keras.Preprocessing);
        Assert.AreEqual("regnetx002_notop.h5", PretrainedCatalog.File("regnetx_002", PretrainedSource.KerasNoTop).FileName);

        var tv = PretrainedCatalog.File("RegNetY-800MF", PretrainedSource.TorchVisionV1);
        Assert.AreEqual("https://download.pytorch.org/models/regnet_y_800mf-1b27b58c.pth", tv.Url.ToString());
        Assert.AreEqual("1b27b58c", tv.Sha256Prefix);
        Assert.AreEqual(WidthRounding.TorchVision, tv.Rounding, "torchvision's regnet_y_800mf is rounded differently");
        Assert.AreEqual(WidthRounding.Nearest, PretrainedCatalog.File("Y016", PretrainedSource.TorchVisionV2).Rounding);

        var pycls = PretrainedCatalog.File("X002", PretrainedSource.Pycls);
        Assert.AreEqual("https://dl.fbaipublicfiles.com/pycls/dds_baselines/160905981/RegNetX-200MF_dds_8gpu.pyth", pycls.Url.ToString());
        Assert.IsFalse(pycls.IsVerifiable);
        Assert.AreEqual("https://huggingface.co/timm/regnetx_002.pycls_in1k/resolve/main/model.safetensors",
            PretrainedCatalog.File("X002", PretrainedSource.Timm).Url.ToString());

        Assert.ThrowsExactly<ArgumentException>(() => PretrainedCatalog.File("X002", PretrainedSource.TorchVisionV1)); // not published
        Assert.ThrowsExactly<ArgumentException>(() => PretrainedCatalog.Find("X999"));
    }

    [TestMethod]
    public async Task DownloadVerifiesSha256AndDeletesBadDownloads()
    {
        byte[] content = File.ReadAllBytes(PathOf("tiny_y_timm.safetensors"));
        string sha = Convert.ToHexStringLower(SHA256.HashData(content));
        using var server = new LocalHttpServer(new() { ["files/tiny.safetensors"] = content });
        string dir = TempDir();
        var url = new Uri(server.BaseUrl, "files/tiny.safetensors");

        string good = Path.Combine(dir, "good.safetensors");
        await PretrainedWeights.DownloadAsync(url, good, sha);
        CollectionAssert.AreEqual(content, File.ReadAllBytes(good));

        string prefixed = Path.Combine(dir, "prefixed.safetensors");
        await PretrainedWeights.DownloadAsync(url, prefixed, sha256Prefix: sha[..8]);
        Assert.IsTrue(File.Exists(prefixed));

        string bad = Path.Combine(dir, "bad.safetensors");
        string wrong = new('0', 64);
        var e = await Assert.ThrowsExactlyAsync<InvalidDataException>(() => PretrainedWeights.DownloadAsync(url, bad, wrong));
        StringAssert.Contains(e.Message, sha);
        StringAssert.Contains(e.Message, wrong);
        Assert.IsFalse(File.Exists(bad), "a bad download is not kept");
        Assert.IsEmpty(Directory.GetFiles(dir, "*.download"), "no temporary file is left");

        await Assert.ThrowsExactlyAsync<HttpRequestException>(() => PretrainedWeights.DownloadAsync(new Uri(server.BaseUrl, "missing"), bad, wrong));
        Assert.IsFalse(File.Exists(bad));
        Directory.Delete(dir, true);
    }

    [TestMethod]
    public async Task CatalogDownloadThroughAMirrorRejectsAFileWithTheWrongHash()
    {
        using var server = new LocalHttpServer(new() { ["regnetx002.h5"] = File.ReadAllBytes(PathOf("tiny_y.h5")) });
        string cache = TempDir();
        var options = new PretrainedOptions { CacheDirectory = cache, MirrorBaseUrl = server.BaseUrl, LocalDirectory = "" };
        var e = await Assert.ThrowsExactlyAsync<InvalidDataException>(() => PretrainedWeights.GetFileAsync("X002", PretrainedSource.Keras, options));
        StringAssert.Contains(e.Message, PretrainedCatalog.Find("X002").KerasSha256);
        CollectionAssert.Contains(server.Requests, "regnetx002.h5");
        Assert.IsEmpty(Directory.GetFiles(cache), "nothing is cached");
        Directory.Delete(cache, true);
    }

    [TestMethod]
    public async Task OfflineModeReadsOnlyLocalFoldersAndVerifiesThem()
    {
        string local = TempDir(), cache = TempDir();
        var options = new PretrainedOptions { Offline = true, LocalDirectory = local, CacheDirectory = cache };
        var missing = await Assert.ThrowsExactlyAsync<FileNotFoundException>(() => PretrainedWeights.GetFileAsync("Y002", PretrainedSource.KerasNoTop, options));
        StringAssert.Contains(missing.Message, "regnety002_notop.h5");
        StringAssert.Contains(missing.Message, local);

        // A local file with the wrong content is refused but left alone (it is the user's).
        string planted = Path.Combine(local, "regnety002_notop.h5");
        File.Copy(PathOf("tiny_y_notop.h5"), planted);
        await Assert.ThrowsExactlyAsync<InvalidDataException>(() => PretrainedWeights.GetFileAsync("Y002", PretrainedSource.KerasNoTop, options));
        Assert.IsTrue(File.Exists(planted));

        // A corrupt cache entry is deleted.
        string cached = Path.Combine(cache, "regnety002.h5");
        File.Copy(PathOf("tiny_y.h5"), cached);
        await Assert.ThrowsExactlyAsync<InvalidDataException>(() => PretrainedWeights.GetFileAsync("Y002", PretrainedSource.Keras, options));
        Assert.IsFalse(File.Exists(cached));
        Directory.Delete(local, true);
        Directory.Delete(cache, true);
    }

    [TestMethod]
    public async Task SourcesWithoutPublishedHashesNeedConsent()
    {
        var options = new PretrainedOptions { Offline = true, LocalDirectory = TempDir(), CacheDirectory = TempDir() };
        await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => PretrainedWeights.GetFileAsync("X002", PretrainedSource.Pycls, options));
        await Assert.ThrowsExactlyAsync<FileNotFoundException>(() =>
            PretrainedWeights.GetFileAsync("X002", PretrainedSource.Pycls, options with { AllowUnverified = true }));
    }
}
