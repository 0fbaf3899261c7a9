using System.Globalization;
using Microsoft.ML.RegNet;
using Spectre.Console;

namespace RegNetML.Tool.Training;

/// <summary>How training is shown: live bars on a terminal, one line per record when redirected, nothing on MPI ranks other than 0.</summary>
internal enum ProgressStyle { Live, Lines, Silent }

/// <summary>
/// Turns the trainer's metrics records into the progress display. The live display's epoch bar advances by fractions of
/// an epoch, so its remaining-time column is the run's ETA.
/// </summary>
internal sealed class TrainingProgress(int firstEpoch, int epochs, int stepsPerEpoch)
{
    private int _stepsPerEpoch = Math.Max(1, stepsPerEpoch);
    private string _validation = "";
    private RegNetTrainingMetrics? _last;

    /// <summary>The last validation record, for the summary line.</summary>
    public RegNetTrainingMetrics? LastValidation { get; private set; }

    public static ProgressStyle StyleFor(IAnsiConsole console) =>
        !DataParallelEnvironment.IsRoot ? ProgressStyle.Silent
        : console.Profile.Capabilities.Interactive && console.Profile.Capabilities.Ansi ? ProgressStyle.Live
        : ProgressStyle.Lines;

    /// <summary>Runs <paramref name="train"/>, which receives the metrics callback, under the display.</summary>
    public T Run<T>(IAnsiConsole console, ProgressStyle style, Func<Action<RegNetTrainingMetrics>, T> train)
    {
        switch (style)
        {
            case ProgressStyle.Live:
                return console.Progress().AutoClear(false).HideCompleted(false)
                    .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                        new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                    .Start(context =>
                    {
                        var epochBar = context.AddTask($"epoch {firstEpoch + 1}/{epochs}", maxValue: epochs);
                        epochBar.Value = firstEpoch;
                        var stepBar = context.AddTask("starting", maxValue: _stepsPerEpoch);
                        return train(m => Update(m, epochBar, stepBar));
                    });
            case ProgressStyle.Lines:
                return train(m => { Record(m); console.WriteLine(Line(m)); });
            default:
                return train(Record);
        }
    }

    private void Record(RegNetTrainingMetrics m)
    {
        if (m.Phase == MetricsPhase.TrainEpoch) _stepsPerEpoch = (int)Math.Max(1, m.Step / (m.Epoch + 1));
        if (m.Phase == MetricsPhase.Validation)
        {
            LastValidation = m;
            _validation = Invariant($" · val top-1 {m.Accuracy:P1} top-5 {m.Top5Accuracy:P1}");
        }
        else _last = m;
    }

    private void Update(RegNetTrainingMetrics m, ProgressTask epochBar, ProgressTask stepBar)
    {
        Record(m);
        long stepInEpoch = m.Phase == MetricsPhase.TrainSteps ? m.Step - (long)m.Epoch * _stepsPerEpoch : _stepsPerEpoch;
        stepBar.MaxValue = _stepsPerEpoch;
        stepBar.Value = Math.Clamp(stepInEpoch, 0, _stepsPerEpoch);
        epochBar.Value = Math.Min(epochs, m.Epoch + stepBar.Value / _stepsPerEpoch);
        epochBar.Description = $"epoch {Math.Min(m.Epoch + 1, epochs)}/{epochs}";
        if (_last is { } last)
            stepBar.Description = Markup.Escape(Invariant($"step {stepBar.Value:F0}/{_stepsPerEpoch} · loss {last.Loss:F4} · lr {last.LearningRate:G3} · {last.ImagesPerSecond:F0} img/s{_validation}"));
    }

    private string Line(RegNetTrainingMetrics m) => m.Phase switch
    {
        MetricsPhase.TrainSteps => Invariant($"epoch {m.Epoch + 1}/{epochs} step {m.Step - (long)m.Epoch * _stepsPerEpoch}/{_stepsPerEpoch}: loss {m.Loss:F4}, lr {m.LearningRate:G4}, {m.ImagesPerSecond:F1} images/s"),
        MetricsPhase.TrainEpoch => Invariant($"epoch {m.Epoch + 1}/{epochs}: loss {m.Loss:F4}, top-1 {m.Accuracy:P2}, lr {m.LearningRate:G4}, {m.ImagesPerSecond:F1} images/s"),
        _ => Invariant($"epoch {m.Epoch + 1}/{epochs} validation: loss {m.Loss:F4}, top-1 {m.Accuracy:P2}, top-5 {m.Top5Accuracy:P2}"),
    };

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
