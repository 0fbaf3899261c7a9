using Microsoft.ML.RegNet.Data.Pipeline;
using Microsoft.ML.Runtime;
using static TorchSharp.torch;
using Microsoft.ML.RegNet.Training;

namespace Microsoft.ML.RegNet;

public sealed partial class RegNetTrainer
{
    // A frozen trunk costs nothing twice: its outputs of one epoch per view are kept and later epochs train the rest on them;
    // without a frozen trunk to cache, the decoded images are kept instead; and the second phase of fine-tuning, which ends
    // the freezing.
    private sealed partial class TrainingLoop
    {
        private TrainableInputCache? _inputCache;
        private long _trainRows;
        // Views of each row that epochs cycle through (epoch e trains on view e mod _views); 0 when nothing is cached.
        private int _views;
        private bool _imagesOverBudget;

        private bool FreezesAnything => _o.FreezeStem || _o.FreezeStages > 0;

        // Stages frozen after the frozen stem; null when nothing is frozen. Needs the model (built in Run).
        private int? TrunkStages => FreezesAnything ? Math.Min(_o.FreezeStages, _model.Stages.Count) : null;

        // Trunk outputs are reusable only when an epoch's inputs are one of a few fixed views: the deterministic
        // preprocessing (one view) or, with CachedAugmentedViews = K, the augmentation of epochs 0…K-1; no mixing (it mixes
        // images before the trunk); one process (data-parallel ranks read other rows each epoch). With a second phase, only
        // if some frozen epoch would replay a view.
        private int CacheableViews()
        {
            if (!_o.CacheFrozenTrunk || !FreezesAnything || _o.Mixing.MixupAlpha != 0 || _o.Mixing.CutMixAlpha != 0 || _parallel is { Size: > 1 })
                return 0;
            int views = _o.Augmentation.Train ? _o.CachedAugmentedViews : 1;
            return _o.UnfreezeAfterEpochs is { } unfreeze && unfreeze <= views ? 0 : views;
        }

        private TrainableInputCache? CreateInputCache()
        {
            _views = CacheableViews();
            if (_views == 0) return CreateImageCache();
            return _o.ReadCachedViewsFromImages ? null : new TrainableInputCache((long)_o.FrozenTrunkCacheMegabytes << 20, Path.GetTempPath());
        }

        // Without the trunk cache (nothing frozen, the second phase, or CacheFrozenTrunk off): the preprocessed images are one
        // fixed view when training does not augment; mixing happens after the batch, so it may. One process, as for the trunk.
        private TrainableInputCache? CreateImageCache()
        {
            if (_o.DecodedImageCacheMegabytes == 0 || _o.Augmentation.Train || _parallel is { Size: > 1 } || _imagesOverBudget) return null;
            _views = 1;
            return TrainableInputCache.ForImages((long)_o.DecodedImageCacheMegabytes << 20);
        }

        private int ViewOf(int epoch) => _views == 0 ? 0 : epoch % _views;

        // With augmented views, an epoch that reads images augments them as its view's epoch did (null: as its own), so
        // a view filled after a resume or a partial epoch holds what the first K epochs computed.
        private int? AugmentationEpoch(int epoch) => _views > 0 && _o.Augmentation.Train ? ViewOf(epoch) : null;

        // A complete view replays the epoch's batches in the input pipeline's order; otherwise the images are read and
        // the session hands each batch's trunk output to the cache as the epoch's view.
        private IEnumerable<ImageBatch> EpochBatches(IDataView train, TrainingSession session, ImageBatchPipeline pipeline, int epoch, int skipBatches)
        {
            int view = ViewOf(epoch);
            if (_inputCache is { } cache && cache.IsComplete(view))
                return cache.Batches(view, pipeline.RowOrder(_trainRows, epoch), _o.BatchSize, skipBatches);
            var batches = TakeFirstEpoch(epoch, skipBatches) ?? pipeline.Read(train, epoch, skipBatches, ReadCancellation, AugmentationEpoch(epoch));
            if (_inputCache is { HoldsImages: true } images) return Keeping(images, view, batches);
            session.TrunkComputed = _inputCache is null ? null : (batch, trunk) => _inputCache.Add(view, batch, trunk);
            return batches;
        }

        // A new run's first epoch, started before its model is built and its weights load (Run); taken once, by that epoch.
        private ImageBatchPipeline.StartedEpoch? _firstEpoch;

        // How far that epoch decodes ahead: all of it when its images fit DecodedImageCacheMegabytes (what the image cache
        // would keep of it anyway), so that small data sets are decoded while the model is set up rather than on the
        // cores the first steps need; otherwise the pipeline's usual depth.
        private int FirstEpochReadAhead(ImageBatchPipeline pipeline)
        {
            long rows = Shard(pad: true)?.RowsOf(_trainRows) ?? _trainRows;
            long epochBytes = rows * pipeline.ImageLength * sizeof(float);
            int usual = pipeline.Options.PrefetchBatches;
            return epochBytes <= (long)_o.DecodedImageCacheMegabytes << 20 ? (int)Math.Max(usual, (rows + _o.BatchSize - 1) / _o.BatchSize) : usual;
        }

        private ImageBatchPipeline.StartedEpoch? TakeFirstEpoch(int epoch, int skipBatches)
        {
            var started = _firstEpoch;
            _firstEpoch = null;
            if (started is null || (epoch == 0 && skipBatches == 0)) return started;
            started.Dispose();
            return null;
        }

        private static IEnumerable<ImageBatch> Keeping(TrainableInputCache images, int view, IEnumerable<ImageBatch> batches)
        {
            foreach (var batch in batches)
            {
                images.Add(view, batch, batch.Images);
                yield return batch;
            }
        }

        // The second phase of fine-tuning (UnfreezeAfterEpochs): the frozen parts train from this epoch on, so the
        // trunk's outputs change every step and the cache has served its purpose; epochs augment as their own again.
        private void Unfreeze(TrainingSession session, int epoch)
        {
            foreach (var module in _frozen)
                foreach (var p in module.parameters()) p.requires_grad = true;
            _frozen = new List<nn.Module>();
            _model.FoldFrozenNormalization(null);
            session.Unfreeze();
            if (_inputCache is not { HoldsImages: true })
            {
                _inputCache?.Dispose();
                _views = 0;
                _inputCache = CreateImageCache();
            }
            if (_parallel is not null) _trainable = _model.parameters().Where(p => p.requires_grad).ToList();
            _channel.Info(MessageSensitivity.None, $"Epoch {epoch}: the frozen stem{(_o.FreezeStages > 0 ? $" and stages 1–{_o.FreezeStages}" : "")} train from now on" +
                (_o.LayerDecay is { } d ? $", at the scheduled rate × {d}^k (layer decay)." : ", at the scheduled rate."));
        }

        // After an epoch that read every row from its start.
        private void CompleteInputCache(TrainingSession session, int epoch)
        {
            int view = ViewOf(epoch);
            if (_inputCache is not { } cache || cache.IsComplete(view)) return;
            if (cache.HoldsImages)
            {
                CompleteImageCache(cache, view);
                return;
            }
            cache.MarkComplete(view);
            session.TrunkComputed = null;
            if (cache.CompleteViews < _views) return;
            bool augmented = _o.Augmentation.Train;
            _channel.Info(MessageSensitivity.None, $"Frozen trunk cached: {_views} {(augmented ? "augmented " : "")}view{(_views == 1 ? "" : "s")} " +
                $"of each row, {cache.Count} outputs, {cache.BytesInMemory >> 20} MiB in memory, {cache.BytesOnDisk >> 20} MiB on disk; " +
                $"later epochs train the unfrozen part only{(augmented ? $", epoch e on view e mod {_views}" : "")}.");
        }

        private void CompleteImageCache(TrainableInputCache cache, int view)
        {
            if (cache.Overflowed)
            {
                _channel.Info(MessageSensitivity.None, $"Decoded images not cached: they need more than DecodedImageCacheMegabytes ({_o.DecodedImageCacheMegabytes} MiB); every epoch reads the image files.");
                cache.Dispose();
                _inputCache = null;
                _views = 0;
                _imagesOverBudget = true;
                return;
            }
            cache.MarkComplete(view);
            _channel.Info(MessageSensitivity.None, $"Decoded images cached: {cache.Count} images, {cache.BytesInMemory >> 20} MiB in memory; later epochs read no image file.");
        }
    }
}
