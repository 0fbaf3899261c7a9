// Scoring in a fresh process: loads a model zip that mlContext.Model.Save wrote for a pipeline containing a RegNet trainer
// (the quick start writes one) and classifies image files. This project references Microsoft.ML, ImageAnalytics and
// OnnxTransformer only, no TorchSharp and no Microsoft.ML.RegNet: the saved pipeline is ML.NET's own transformers with
// the network embedded as ONNX, so it deploys wherever ML.NET and ONNX Runtime run.
// Usage: RegNetML.Scoring <model.zip> <image file> [more image files] [--path-column ImagePath]
using Microsoft.ML;
using Microsoft.ML.Data;

var files = new List<string>();
string pathColumn = "ImagePath";
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--path-column" && i + 1 < args.Length) pathColumn = args[++i];
    else files.Add(args[i]);
}
if (files.Count < 2)
{
    Console.Error.WriteLine("Usage: RegNetML.Scoring <model.zip> <image file> [more image files] [--path-column ImagePath]");
    return 2;
}
string modelPath = files[0];
foreach (var file in files)
{
    if (!File.Exists(file))
    {
        Console.Error.WriteLine($"File not found: {file}");
        return 2;
    }
}

var ml = new MLContext();
ITransformer model;
DataViewSchema inputSchema;
try
{
    model = ml.Model.Load(modelPath, out inputSchema);
}
catch (Exception e) when (e is InvalidOperationException or FormatException or InvalidDataException)
{
    Console.Error.WriteLine($"{modelPath} is not a loadable ML.NET model: {e.Message}");
    return 1;
}

// The saved pipeline starts where training started: a text column with the image path (LoadImages reads the file) and,
// when training mapped labels to keys, a text label column. At prediction time the label is unknown and left empty.
if (inputSchema.GetColumnOrNull(pathColumn) is null)
{
    Console.Error.WriteLine($"The model's input has no column '{pathColumn}' (it has: {string.Join(", ", inputSchema.Select(c => c.Name))}); " +
                            "pass the image path column's name with --path-column.");
    return 1;
}
var definition = SchemaDefinition.Create(typeof(ImageInput));
definition[nameof(ImageInput.ImagePath)].ColumnName = pathColumn;
var engine = ml.Model.CreatePredictionEngine<ImageInput, ImagePrediction>(model, inputSchemaDefinition: definition);

// The Score column's slot names are the class names, in slot order.
var scoreColumn = model.GetOutputSchema(inputSchema)["Score"];
var slotNames = default(VBuffer<ReadOnlyMemory<char>>);
scoreColumn.GetSlotNames(ref slotNames);
string[] classes = slotNames.DenseValues().Select(name => name.ToString()).ToArray();

Console.WriteLine($"Loaded {modelPath} in process {Environment.ProcessId}: {classes.Length} classes ({string.Join(", ", classes)})");
foreach (var file in files.Skip(1))
{
    var prediction = engine.Predict(new ImageInput { ImagePath = Path.GetFullPath(file) });
    var top = prediction.Score.Select((p, i) => (Probability: p, Class: classes[i])).OrderByDescending(t => t.Probability).Take(3).ToArray();
    // PredictedLabel is a key over the class names; key values start at 1.
    string predicted = classes[prediction.PredictedLabel - 1];
    Console.WriteLine($"{file}: {predicted} ({top[0].Probability:P1}); next {string.Join(", ", top.Skip(1).Select(t => $"{t.Class} {t.Probability:P1}"))}");
}
return 0;

public sealed class ImageInput
{
    public string ImagePath { get; set; } = "";
    public string Label { get; set; } = "";
}

public sealed class ImagePrediction
{
    public float[] Score { get; set; } = Array.Empty<float>();
    public uint PredictedLabel { get; set; }
}
