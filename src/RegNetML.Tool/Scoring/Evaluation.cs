namespace RegNetML.Tool.Scoring;

/// <summary>Classification metrics from probabilities and true class indices: top-1/top-5, log-loss, per class, confusion.</summary>
internal sealed class Evaluation
{
    // ML.NET's log-loss clips probabilities the same way, so a confident miss costs a finite amount.
    private const double Epsilon = 1e-15;

    public Evaluation(IReadOnlyList<float[]> probabilities, IReadOnlyList<int> truth, int classes)
    {
        Classes = classes;
        TopK = Math.Min(5, classes);
        Confusion = new int[classes, classes];
        double logLoss = 0;
        int top1 = 0, topK = 0;
        for (int i = 0; i < truth.Count; i++)
        {
            var p = probabilities[i];
            int predicted = ArgMax(p);
            Confusion[truth[i], predicted]++;
            if (predicted == truth[i]) top1++;
            if (p.Count(v => v > p[truth[i]]) < TopK) topK++;
            logLoss -= Math.Log(Math.Max(p[truth[i]], Epsilon));
        }
        Images = truth.Count;
        Top1 = (double)top1 / Images;
        TopKAccuracy = (double)topK / Images;
        LogLoss = logLoss / Images;
    }

    public int Classes { get; }
    public int Images { get; }
    public int TopK { get; }
    public double Top1 { get; }
    public double TopKAccuracy { get; }
    public double LogLoss { get; }
    /// <summary>Rows: true class; columns: predicted class.</summary>
    public int[,] Confusion { get; }

    public int Count(int c) => Enumerable.Range(0, Classes).Sum(p => Confusion[c, p]);
    public int Predicted(int c) => Enumerable.Range(0, Classes).Sum(t => Confusion[t, c]);
    /// <summary>Recall of class <paramref name="c"/> (its top-1 accuracy); NaN when it has no images.</summary>
    public double Recall(int c) => Count(c) == 0 ? double.NaN : (double)Confusion[c, c] / Count(c);
    public double Precision(int c) => Predicted(c) == 0 ? double.NaN : (double)Confusion[c, c] / Predicted(c);

    public static int ArgMax(float[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}
