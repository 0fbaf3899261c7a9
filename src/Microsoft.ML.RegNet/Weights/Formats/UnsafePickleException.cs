namespace Microsoft.ML.RegNet;

/// <summary>A pickle asked for something this reader refuses to create: it would run code in Python.</summary>
/// <remarks>Derives from <see cref="IOException"/> (as <see cref="InvalidDataException"/> does, which is sealed).</remarks>
public sealed class UnsafePickleException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What the pickle asked for (the module and name of the refused global) and what to do instead.</param>
    public UnsafePickleException(string message) : base(message) { }
}
