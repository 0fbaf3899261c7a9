using System.Text.RegularExpressions;
using Microsoft.ML.Data;
using Microsoft.ML.RegNet.Runtime;
using Microsoft.ML.RegNet.Tests.Training;
using TorchSharp;

namespace Microsoft.ML.RegNet.Tests.Runtime;

[TestClass]
public sealed class ComputeDeviceTests
{
    private static readonly RegNetSpec Tiny = RegNetSpec.Create(depth: 2, w0: 8, wa: 8, wm: 2, groupWidth: 8, name: "tiny");

    [TestMethod]
    public void RequestsResolveAsMLNetDoes()
    {
        var warnings = new List<string>();
        Assert.AreEqual(DeviceType.CPU, ComputeDevice.Resolve(null, null, false, warnings.Add, cudaDevices: 0).type, "nothing asked: CPU");
        var gpu = ComputeDevice.Resolve(null, 1, false, warnings.Add, cudaDevices: 2);
        Assert.AreEqual((DeviceType.CUDA, 1L), (gpu.type, (long)gpu.index), "GpuDeviceId = 1 with two GPUs");
        var named = ComputeDevice.Resolve("CUDA", null, false, warnings.Add, cudaDevices: 1);
        Assert.AreEqual((DeviceType.CUDA, 0L), (named.type, (long)named.index), "\"cuda\" is device 0");
        Assert.AreEqual(DeviceType.CPU, ComputeDevice.Resolve("cpu", 0, false, warnings.Add, cudaDevices: 1).type, "an explicit device wins over GpuDeviceId");
        Assert.IsEmpty(warnings);

        var e = Assert.ThrowsExactly<InvalidOperationException>(() => ComputeDevice.Resolve("cuda:2", null, false, warnings.Add, cudaDevices: 2));
        StringAssert.Contains(e.Message, "Device = \"cuda:2\" asks for CUDA device 2, but this process sees 2 CUDA device(s) (0–1)");
        Assert.AreEqual(DeviceType.CPU, ComputeDevice.Resolve("cuda:2", null, true, warnings.Add, cudaDevices: 2).type);
        Assert.HasCount(1, warnings);
        var unknown = Assert.ThrowsExactly<ArgumentException>(() => ComputeDevice.Resolve("tpu", null, false, warnings.Add));
        StringAssert.Contains(unknown.Message, "Use \"cpu\", \"cuda\" or \"cuda:N\"");
    }

    [TestMethod]
    public void GpuDeviceIdWithoutCudaFailsFitOrFallsBackWithAWarning()
    {
        if (torch.cuda.is_available()) Assert.Inconclusive("This process has CUDA; the test is about a machine without it.");
        using var data = new TinyImageData(perClass: 2);

        var strict = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = false };
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => Fit(strict, data, device: null));
        StringAssert.Contains(e.Message, "MLContext.GpuDeviceId = 0 asks for CUDA device 0, but CUDA is not available in this process");
        StringAssert.Contains(e.Message, "FallbackToCpu = true");

        var lenient = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = true };
        var log = new List<LoggingEventArgs>();
        lenient.Log += (_, message) => log.Add(message);
        using (var model = Fit(lenient, data, device: null))
            Assert.AreEqual(DeviceType.CPU, model.Model.parameters().First().device_type);
        Assert.IsTrue(log.Any(m => m.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning && m.Message.Contains("run on the CPU (MLContext.FallbackToCpu is true)")),
            "no warning logged for the fallback");

        var explicitCuda = Assert.ThrowsExactly<InvalidOperationException>(() => Fit(new MLContext(seed: 1), data, device: "cuda:0"));
        StringAssert.Contains(explicitCuda.Message, "Device = \"cuda:0\"");
        var unknown = Assert.ThrowsExactly<ArgumentException>(() => new MLContext().MulticlassClassification.Trainers.RegNet(
            new RegNetTrainer.Options { Device = "gpu0" }));
        StringAssert.Contains(unknown.Message, "Unknown device \"gpu0\"");
    }

    [TestMethod]
    public void NoTensorIsCreatedOnAHardCodedDevice()
    {
        // An analyser over the sources: every tensor factory call either names a device or sits in a file whose tensors are
        // host memory by design (each with its reason); CPU devices are named only where devices are chosen.
        var hostMemory = new Dictionary<string, string>
        {
            ["Weights/Formats/"] = "file readers fill host tensors that are copied into the model's parameters on its device",
            ["Data/Pipeline/ImageBatchPipeline.Workers.cs"] = "batches are assembled in host memory; the training session and the scorer move them",
            ["Training/TrainableInputCache.cs"] = "cached trunk outputs and images are assembled in host memory like the pipeline's batches; the training session moves them",
            ["Runtime/"] = "loading libtorch and probing the CPU's convolution kernels concern the CPU itself",
            ["Distributed/"] = "MPI reduces host memory; data-parallel training is refused at Fit for any device but the CPU",
        };
        var factory = new Regex(@"\b(tensor|zeros|ones|empty|arange|full|from_array|randn|rand|randint|randperm|eye|linspace|as_tensor)\(");
        var hardCoded = new Regex(@"torch\.CPU\b|new Device\(DeviceType\.CPU|device: CPU\b|\.to\(CPU\)|""cpu""");
        string root = Path.Combine(RepositoryRoot(), "src", "Microsoft.ML.RegNet");
        var offenders = new List<string>();
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(root, file).Replace('\\', '/');
            if (relative.StartsWith("obj/") || relative.StartsWith("bin/")) continue;
            bool host = hostMemory.Keys.Any(relative.StartsWith);
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                string line = lines[i].Trim();
                if (line.StartsWith("//") || line.StartsWith("///")) continue;
                if (!host && factory.IsMatch(line) && !line.Contains("device:")) offenders.Add($"{relative}:{i + 1}: {line}");
                if (relative != "Runtime/ComputeDevice.cs" && hardCoded.IsMatch(line)) offenders.Add($"{relative}:{i + 1}: {line}");
            }
        }
        Assert.IsEmpty(offenders, "tensors created without the model's device:\n" + string.Join("\n", offenders));
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "RegNetML.sln"))) return dir.FullName;
        throw new InvalidOperationException("RegNetML.sln not found above the test binaries.");
    }

    private static RegNetTransformer Fit(MLContext ml, TinyImageData data, string? device)
    {
        var view = ml.Data.LoadFromEnumerable(data.Rows);
        var prepared = ml.Transforms.Conversion.MapValueToKey("Label", nameof(TinyImageData.Row.Label))
            .Append(ml.Transforms.LoadImages("Image", null, nameof(TinyImageData.Row.ImagePath)))
            .Fit(view).Transform(view);
        return ml.MulticlassClassification.Trainers.RegNet(new RegNetTrainer.Options
        {
            Spec = Tiny, ImageSize = 32, BatchSize = 2, MaxEpochs = 1, WorkerThreads = 1, Device = device,
            Augmentation = AugmentationOptions.Evaluation(1.0),
        }).Fit(prepared);
    }
}
