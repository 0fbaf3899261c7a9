using System.Security.Cryptography;

namespace Microsoft.ML.RegNet;

/// <summary>Where pretrained files are looked for and how they are fetched.</summary>
public sealed record PretrainedOptions
{
    /// <summary>A folder of files put there by hand (offline use), checked first. Default: <c>$REGNET_WEIGHTS_DIR</c>.</summary>
    public string? LocalDirectory { get; init; }

    /// <summary>The download cache. Default: <c>$REGNET_WEIGHTS_CACHE</c>, else <c>~/.cache/regnetml/weights</c>.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Never download (also when <c>$REGNET_OFFLINE</c> is <c>1</c> or <c>true</c>): only the local directory and the cache are used.</summary>
    public bool Offline { get; init; }

    /// <summary>Fetch <c>{MirrorBaseUrl}/{file name}</c> instead of the publisher's address (an internal mirror).</summary>
    public Uri? MirrorBaseUrl { get; init; }

    /// <summary>Allow files without a published hash (pycls, timm). They are still downloaded atomically, but not verified.</summary>
    public bool AllowUnverified { get; init; }

    /// <summary>SHA-256 (lower-case hex) to require instead of the published one, by file name (e.g. <c>regnetx002.h5</c>):
    /// for your own retrained or converted weights placed under a catalog name. The file is still verified, against this hash.</summary>
    public IReadOnlyDictionary<string, string>? ExpectedSha256 { get; init; }

    /// <summary>The client to download with; a new one when null.</summary>
    public HttpClient? HttpClient { get; init; }

    /// <summary>The defaults: environment variables, then the user cache; downloads allowed, verified files only.</summary>
    public static PretrainedOptions Default { get; } = new();
}

/// <summary>Finds, downloads (to a cache, SHA-256-verified before use) and loads the published RegNet weights.</summary>
public static class PretrainedWeights
{
    /// <summary>Environment variable naming a folder of hand-placed weight files, checked before the cache.</summary>
    public const string LocalDirectoryVariable = "REGNET_WEIGHTS_DIR";
    /// <summary>Environment variable overriding the download cache folder (default <c>~/.cache/regnetml/weights</c>).</summary>
    public const string CacheDirectoryVariable = "REGNET_WEIGHTS_CACHE";
    /// <summary>Environment variable that, set to <c>1</c> or <c>true</c>, forbids downloads.</summary>
    public const string OfflineVariable = "REGNET_OFFLINE";

    /// <summary>The cache directory <paramref name="options"/> resolve to.</summary>
    public static string CacheDirectory(PretrainedOptions? options = null) =>
        options?.CacheDirectory
        ?? (Environment.GetEnvironmentVariable(CacheDirectoryVariable) is { Length: > 0 } env ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "regnetml", "weights"));

    /// <summary>A verified local copy of <paramref name="model"/>'s <paramref name="source"/> file: from the local directory,
    /// the cache, or downloaded into the cache.</summary>
    /// <exception cref="InvalidDataException">A file's SHA-256 does not match the published one (bad downloads are deleted).</exception>
    /// <exception cref="FileNotFoundException">Offline and the file is in neither folder.</exception>
    /// <exception cref="InvalidOperationException">The source publishes no hash and <see cref="PretrainedOptions.AllowUnverified"/> is false.</exception>
    public static async Task<string> GetFileAsync(string model, PretrainedSource source, PretrainedOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= PretrainedOptions.Default;
        var file = PretrainedCatalog.File(model, source);
        if (options.ExpectedSha256?.GetValueOrDefault(file.FileName) is { } own) file = file with { Sha256 = own, Sha256Prefix = null };
        if (!file.IsVerifiable && !options.AllowUnverified)
            throw new InvalidOperationException(
                $"{file.Source} publishes no hash for {file.FileName}, so a download cannot be verified. Set PretrainedOptions.AllowUnverified " +
                "to accept it, or prefer a verifiable source (Keras: full SHA-256; torchvision: hash prefix in the file name).");

        string? local = options.LocalDirectory ?? Environment.GetEnvironmentVariable(LocalDirectoryVariable);
        if (!string.IsNullOrEmpty(local) && File.Exists(Path.Combine(local, file.FileName)))
        {
            string path = Path.Combine(local, file.FileName);
            await VerifyAsync(path, file.Sha256, file.Sha256Prefix, deleteOnMismatch: false, cancellationToken).ConfigureAwait(false);
            return path;
        }

        string cache = CacheDirectory(options);
        string cached = Path.Combine(cache, file.FileName);
        if (File.Exists(cached))
        {
            try
            {
                await VerifyAsync(cached, file.Sha256, file.Sha256Prefix, deleteOnMismatch: true, cancellationToken).ConfigureAwait(false);
                return cached;
            }
            catch (InvalidDataException) when (!IsOffline(options))
            {
                // a corrupt cache entry was deleted; download again below
            }
        }

        if (IsOffline(options))
            throw new FileNotFoundException(
                $"{file.FileName} ({file.Model}, {file.Source}) is not available offline. Download {file.Url} and put it in " +
                $"{(string.IsNullOrEmpty(local) ? $"the folder named by ${LocalDirectoryVariable}" : local)} or in the cache {cache}.", file.FileName);

        var url = options.MirrorBaseUrl is { } mirror ? new Uri(mirror.ToString().TrimEnd('/') + "/" + file.FileName) : file.Url;
        await DownloadAsync(url, cached, file.Sha256, file.Sha256Prefix, options.HttpClient, cancellationToken).ConfigureAwait(false);
        return cached;
    }

    /// <summary>Downloads <paramref name="url"/> to a temporary file beside <paramref name="destination"/>, hashing while it
    /// streams; the file is moved into place only if the SHA-256 (or its prefix) matches, otherwise it is deleted.</summary>
    /// <exception cref="InvalidDataException">Hash mismatch (nothing is left behind).</exception>
    /// <exception cref="HttpRequestException">The server did not return the file.</exception>
    public static async Task DownloadAsync(Uri url, string destination, string? sha256 = null, string? sha256Prefix = null,
        HttpClient? httpClient = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentException.ThrowIfNullOrEmpty(destination);
        string full = Path.GetFullPath(destination);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.download");
        var client = httpClient ?? new HttpClient();
        try
        {
            using var response = await client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw new HttpRequestException($"Downloading {url} failed: HTTP {(int)response.StatusCode} {response.ReasonPhrase}.", null, response.StatusCode);
            string actual;
            await using (var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false))
            await using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buffer = new byte[1 << 16];
                int read;
                while ((read = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }
                actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            }
            CheckHash(url.ToString(), actual, sha256, sha256Prefix);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
            if (httpClient is null) client.Dispose();
        }
    }

    /// <summary>Gets the file and loads it into a new model of the right architecture (torchvision's rounding where its
    /// widths differ). The report carries the preprocessing the weights expect.</summary>
    /// <param name="model">Model name, e.g. <c>X002</c>.</param>
    /// <param name="source">Which published weights.</param>
    /// <param name="numberOfClasses">Classifier size; 1000 (ImageNet) by default, another value re-initialises the classifier; 0 = headless.</param>
    /// <param name="options">Download options.</param>
    /// <param name="loadOptions">Load options.</param>
    /// <param name="cancellationToken">Cancels the download.</param>
    public static async Task<LoadedRegNet> LoadAsync(string model, PretrainedSource source = PretrainedSource.Keras, int numberOfClasses = 1000,
        PretrainedOptions? options = null, WeightLoadOptions? loadOptions = null, CancellationToken cancellationToken = default)
    {
        var file = PretrainedCatalog.File(model, source);
        string path = await GetFileAsync(model, source, options, cancellationToken).ConfigureAwait(false);
        var net = new RegNetModel(RegNetSpec.FromName(file.Model, file.Rounding), numberOfClasses);
        try
        {
            return new LoadedRegNet(net, RegNetWeights.Load(net, path, loadOptions));
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    /// <summary>Lower-case hex SHA-256 of a file.</summary>
    public static async Task<string> Sha256Async(string path, CancellationToken cancellationToken = default)
    {
        await using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
    }

    private static async Task VerifyAsync(string path, string? sha256, string? prefix, bool deleteOnMismatch, CancellationToken cancellationToken)
    {
        if (sha256 is null && prefix is null) return;
        string actual = await Sha256Async(path, cancellationToken).ConfigureAwait(false);
        try
        {
            CheckHash(path, actual, sha256, prefix);
        }
        catch (InvalidDataException) when (deleteOnMismatch)
        {
            File.Delete(path);
            throw;
        }
    }

    private static void CheckHash(string what, string actual, string? sha256, string? prefix)
    {
        if (sha256 is not null && !string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{what}: SHA-256 {actual} does not match the published {sha256}; the file is corrupt or not the published one, and was not used.");
        if (prefix is not null && !actual.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{what}: SHA-256 {actual} does not start with {prefix} (the hash prefix in the published file name); the file was not used.");
    }

    private static bool IsOffline(PretrainedOptions options) =>
        options.Offline || Environment.GetEnvironmentVariable(OfflineVariable) is "1" or "true" or "TRUE" or "True";
}
