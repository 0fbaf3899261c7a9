namespace RegNetML.Tool;

/// <summary>A mistake the user can fix (a missing folder, an unknown architecture): printed as one line, exit code 2.</summary>
internal sealed class UserError(string message) : Exception(message);
