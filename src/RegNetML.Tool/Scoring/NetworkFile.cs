using Microsoft.ML;
using Microsoft.ML.RegNet;
using RegNetML.Tool.Data;
using RegNetML.Tool.Training;

namespace RegNetML.Tool.Scoring;

/// <summary>A network read from a weight file, with what the file says about classes and preprocessing.</summary>
internal sealed record LoadedNetwork(RegNetModel Model, WeightFileReport Report, IReadOnlyList<string> ClassNames) : IDisposable
{
    public void Dispose() => Model.Dispose();
}

/// <summary>Reading any weight file the library reads, and writing a network in every format it writes.</summary>
internal static class NetworkFile
{
    public static readonly string[] WritableSuffixes = { ".regnet.safetensors", ".safetensors", ".onnx", ".zip" };

    /// <summary>Reads <paramref name="path"/>; a plain state dict (PyTorch, safetensors) needs <paramref name="arch"/>,
    /// and then <paramref name="classes"/> (default 1000, ImageNet's) for its classifier.</summary>
    public static LoadedNetwork Load(string path, string? arch = null, int? classes = null)
    {
        if (!File.Exists(path)) throw new UserError($"{path} does not exist. Pass a weight file, a model.zip or a run folder.");
        try
        {
            LoadedRegNet loaded;
            if (arch is null) loaded = RegNetWeights.LoadModel(path, classes);
            else
            {
                var model = new RegNetModel(Architecture.Resolve(arch, null), classes ?? 1000);
                try { loaded = new LoadedRegNet(model, RegNetWeights.Load(model, path)); }
                catch { model.Dispose(); throw; }
            }
            var names = loaded.Report.ClassNames.Count == loaded.Model.NumberOfClasses && loaded.Report.Classifier == ClassifierStatus.Loaded
                ? loaded.Report.ClassNames
                : Enumerable.Range(0, loaded.Model.NumberOfClasses).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
            return new LoadedNetwork(loaded.Model, loaded.Report, names);
        }
        catch (NotSupportedException e)
        {
            throw new UserError($"{e.Message} Give --arch NAME (and --classes N if it is not an ImageNet classifier) to read it.");
        }
        catch (WeightMismatchException e)
        {
            throw new UserError($"{path} does not fit the architecture: {Mismatch(e)}. Check --arch (and --classes), or use the architecture the weights were trained with.");
        }
        catch (UnsafePickleException e)
        {
            throw new UserError($"{path} was refused: {e.Message}");
        }
        catch (InvalidDataException e)
        {
            throw new UserError($"{path} is not a model or weight file regnet reads ({e.Message}).");
        }
    }

    /// <summary>The first difference and the counts, short enough for one line (the exception's message lists many).</summary>
    public static string Mismatch(WeightMismatchException e)
    {
        var r = e.Report;
        string first = r.Mismatched.Count > 0 ? r.Mismatched[0].ToString() : r.Missing.Count > 0 ? $"'{r.Missing[0]}' is missing from the file" : $"the file has '{r.Unexpected[0]}' the model lacks";
        return $"{first} ({r.Mismatched.Count} shape mismatches, {r.Missing.Count} missing, {r.Unexpected.Count} unexpected)";
    }

    /// <summary>Writes the network to <paramref name="path"/> in the format its name asks for.</summary>
    public static void Write(LoadedNetwork network, string path)
    {
        string name = Path.GetFileName(path).ToLowerInvariant();
        var pre = network.Report.Preprocessing;
        if (name.EndsWith(".regnet.safetensors")) RegNetWeights.Save(network.Model, path, network.ClassNames, pre);
        else if (name.EndsWith(".safetensors")) RegNetWeights.SaveSafetensors(network.Model, path);
        else if (name.EndsWith(".onnx"))
            // Raw RGB pixels in (0–255, planes R, G, B at the training size), normalised inside the graph, as ML.NET's ExtractPixels gives them.
            RegNetOnnxExporter.Export(network.Model, path, new OnnxExportOptions
            {
                ProbabilitiesOutputName = "probabilities", ClassNames = network.ClassNames, Normalization = pre.Normalization,
            });
        else if (name.EndsWith(".zip")) WriteModelZip(network, path);
        else throw new UserError($"{path}: regnet writes {string.Join(", ", WritableSuffixes)} (own format, timm-layout safetensors, ONNX, ML.NET model.zip); name the output with one of them.");
    }

    private static void WriteModelZip(LoadedNetwork network, string path)
    {
        if (network.Model.NumberOfClasses == 0) throw new UserError("A headless network (no classifier) cannot be saved as a model.zip; it has nothing to predict.");
        var ml = new MLContext(seed: 1);
        var input = ml.Data.LoadFromEnumerable(Array.Empty<ImageItem>());
        var images = ml.Transforms.LoadImages("Image", null, nameof(ImageItem.ImagePath)).Fit(input);
        var scorer = RegNetOnnxScoring.CreateTransformer(ml, network.Model, network.Report.Preprocessing, network.ClassNames, "Image");
        var chain = new Microsoft.ML.Data.TransformerChain<ITransformer>(images, scorer);
        ml.Model.SaveAtomically(chain, input.Schema, path);
    }
}
