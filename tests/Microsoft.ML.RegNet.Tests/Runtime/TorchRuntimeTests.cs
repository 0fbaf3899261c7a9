using System.Text;
using Microsoft.ML.RegNet.Runtime;
using TorchSharp;

namespace Microsoft.ML.RegNet.Tests.Runtime;

[TestClass]
public sealed class TorchRuntimeTests
{
    private const string Glibcxx = "GLIBCXX_3.4.32";

    [TestMethod]
    public void NativeLibraryLoadsAndComputes()
    {
        TorchRuntime.Configure();
        using var a = torch.tensor(new float[] { 1, 2, 3, 4 }, new long[] { 2, 2 });
        using var product = a.matmul(a);
        CollectionAssert.AreEqual(new float[] { 7, 10, 15, 22 }, product.data<float>().ToArray());
    }

    [TestMethod]
    public void WhereTheIsaCapIsAppliedOneDnnStaysEnabledAndCorrect()
    {
        TorchRuntime.Configure();
        string report = TorchRuntime.ConvolutionSelfTest;
        if (!report.Contains("capped at AVX2", StringComparison.Ordinal))
            Assert.Inconclusive($"No ISA cap on this CPU: {report}");
        // The cap exists to keep oneDNN's speed on AMD CPUs whose AVX-512 kernels are wrong; it must have been enough.
        Assert.IsTrue(TorchRuntime.OneDnnEnabled, report);
        StringAssert.Contains(report, "(correct)");
        Assert.AreEqual("AVX2", Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA"));
    }

    [TestMethod]
    public void OnOldLibStdCxxTheOutputCopyIsPatchedAndTheDiagnosisNamesCauseAndFix()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("The GLIBCXX fix applies to Linux only.");
        string hostLib = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";
        bool hostHasVersion = File.Exists(hostLib) && File.ReadAllBytes(hostLib).AsSpan().IndexOf(Encoding.ASCII.GetBytes(Glibcxx + "\0")) >= 0;
        string outputCopy = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.IsTrue(File.Exists(outputCopy), outputCopy);

        ushort? flags = ElfVersionNeeds.FlagsOf(File.ReadAllBytes(outputCopy), Glibcxx);
        Assert.IsNotNull(flags, $"{outputCopy} should name {Glibcxx}");
        const ushort weak = 0x2;
        Assert.AreEqual(!hostHasVersion, (flags.Value & weak) != 0, "weak exactly when the host lacks the version");

        if (!hostHasVersion)
        {
            string message = TorchRuntime.Diagnose();
            StringAssert.Contains(message, Glibcxx);
            StringAssert.Contains(message, "rebuild");
        }
    }
}

/// <summary>Reads vna_flags of a version requirement from an ELF64 file (independent of the build task's patcher).</summary>
internal static class ElfVersionNeeds
{
    public static ushort? FlagsOf(byte[] f, string versionName)
    {
        long shoff = BitConverter.ToInt64(f, 0x28);
        int shentsize = BitConverter.ToUInt16(f, 0x3A), shnum = BitConverter.ToUInt16(f, 0x3C);
        for (int s = 0; s < shnum; s++)
        {
            int sh = (int)(shoff + s * shentsize);
            if (BitConverter.ToUInt32(f, sh + 4) != 0x6ffffffe) continue;
            int offset = (int)BitConverter.ToInt64(f, sh + 24);
            int link = (int)BitConverter.ToUInt32(f, sh + 40);
            int count = (int)BitConverter.ToUInt32(f, sh + 44);
            int strtab = (int)BitConverter.ToInt64(f, (int)(shoff + link * shentsize) + 24);
            int vn = offset;
            for (int v = 0; v < count; v++, vn += (int)BitConverter.ToUInt32(f, vn + 12))
            {
                int aux = vn + (int)BitConverter.ToUInt32(f, vn + 8);
                for (int a = 0; a < BitConverter.ToUInt16(f, vn + 2); a++, aux += (int)BitConverter.ToUInt32(f, aux + 12))
                {
                    int name = strtab + (int)BitConverter.ToUInt32(f, aux + 8);
                    int end = Array.IndexOf(f, (byte)0, name);
                    if (Encoding.ASCII.GetString(f, name, end - name) == versionName) return BitConverter.ToUInt16(f, aux + 4);
                }
            }
        }
        return null;
    }
}
