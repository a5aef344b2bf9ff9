"""Training: features -> a Keras model, seeded and deterministic.

Each epoch sees freshly augmented training clips (keyspot/augment.py); the
learning rate follows a cosine decay; training stops early when validation
accuracy has not improved for `train.patience` epochs, and the best epoch on
validation is the model. Class imbalance is evened out with inverse-frequency
class weights. Outputs are written only when training completes, as one
set, so a killed run leaves the previous models in place and the next run
starts cleanly.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from keyspot import artifacts, augment, checkpoint, cpu, features, keras_files, portable_ops
from keyspot.data.engines import engine
from keyspot.data.manifest import read_manifest
from keyspot.features import FeatureSpec
from keyspot.labels import SILENCE


def make_deterministic(seed: int) -> None:
    """Same seed, same weights: seeded RNGs, deterministic TF kernels, and
    the same CPU kernels on every x86-64 machine (keyspot.cpu)."""
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    cpu.pin_kernels()
    import keras
    import tensorflow as tf

    # Layer names count up per process (conv2d, conv2d_1, ...) and are saved
    # in model.keras: start the count afresh so names never depend on what
    # was built before in the same process.
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    portable_ops.install()


def training_seed(params) -> int:
    """The seed of everything random in training (train.seed_offset)."""
    return params.seed + params.train.seed_offset


def class_weights(y: np.ndarray, num_labels: int, power: float = 1.0) -> dict[int, float]:
    """Inverse-frequency weights raised to `power`: 1 makes rare classes
    count as much as common ones (balanced accuracy), 0 weighs every clip
    alike (plain accuracy, the class priors kept), 0.5 is between."""
    counts = np.bincount(y, minlength=num_labels).astype(np.float64)
    weights = (len(y) / (num_labels * np.maximum(counts, 1))) ** power
    return {i: float(w) for i, w in enumerate(weights)}


def _history_csv(history: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(history[0]), lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue()


def engine_weights(raw_dir: Path, paths: np.ndarray, weights: dict[str, float]) -> np.ndarray:
    """Each training clip's weight, in the order of train.npz: that of the
    speech engine that spoke it (its manifest speaker says which), 1 for
    the others; scaled to a mean of 1, so the loss keeps its size."""
    if not weights:
        return np.ones(len(paths), np.float32)
    manifest = Path(raw_dir) / "manifest.csv"
    if not manifest.is_file():
        raise ValueError(f"{manifest}: not found; train.engine_weights needs the clips' speakers "
                         "(run the fetch stage, or set train.engine_weights={})")
    speakers = {row.path: row.speaker for row in read_manifest(manifest, check_files=False)}
    clip = np.array([weights.get(engine(speakers[str(p)]), 1.0) for p in paths], np.float64)
    return (clip / clip.mean()).astype(np.float32)


def load_training_audio(raw_dir: Path, paths: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """int16 clips of the training split, in the order of train.npz."""
    from keyspot.features.extract import stream_pcm

    return stream_pcm([Path(raw_dir) / str(p) for p in paths], spec)


class EpochData:
    """The training examples of each epoch, with their engine weights: the
    features of train.npz when augmentation is off, else features of freshly
    augmented clips."""

    BLOCK = 1024   # clips augmented and featurised at a time

    def __init__(self, params, spec: FeatureSpec, features_dir: Path, raw_dir: Path):
        self.params, self.spec, self.seed = params, spec, training_seed(params)
        with np.load(Path(features_dir) / "train.npz", allow_pickle=False) as data:
            self.x, self.y, paths = data["x"], data["y"], data["path"]
        self.weights = engine_weights(raw_dir, paths, params.train.engine_weights)
        self.aug = params.train.augment
        self.augmenting = self.aug.prob > 0
        if self.augmenting:
            self.pcm = load_training_audio(raw_dir, paths, spec)
            silence = spec.labels.index(SILENCE) if SILENCE in spec.labels else None
            self.noise = augment.noise_bank(self.pcm, self.y, silence, self.seed)
            # Reused every block: fresh 100 MB frame arrays cost page faults
            # that took ten times as long as the features themselves.
            self.work = features.Workspace(spec, self.BLOCK)

    def epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = augment.rng_for(self.seed, "order", epoch).permutation(len(self.y))
        if not self.augmenting:
            return self.x[order][..., None], self.y[order], self.weights[order]
        x = np.empty((len(order), *self.spec.shape), np.float32)
        for start in range(0, len(order), self.BLOCK):
            index = order[start:start + self.BLOCK]
            pcm = augment.augment_waveforms(self.pcm[index], self.noise, self.aug, self.spec.sample_rate,
                                            self.seed, epoch, index)
            block = features.normalise(features.unnormalised(pcm, self.spec, self.work), self.spec)
            x[start:start + len(index)] = augment.mask_features(block, self.aug, self.seed, epoch, index)
        return x[..., None], self.y[order], self.weights[order]


# models/.train.*: where a run stages its outputs before installing them.
STAGING = "train"


def write_outputs(model, history: list[dict], summary: dict, models_dir: Path, reports_dir: Path) -> None:
    """The Keras model, its SavedModel and the reports, written aside and then
    installed as one set: until then (a kill included) the previous set
    stays in place, which is why dvc.yaml persists train's outputs."""
    models_dir.mkdir(parents=True, exist_ok=True)
    artifacts.clear_stale(models_dir / STAGING)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=f".{STAGING}.") as tmp:
        tmp = Path(tmp)
        keras_files.save_keras(model, tmp / "model.keras")
        keras_files.export_saved_model_in_fresh_process(tmp / "model.keras", tmp / "saved_model")
        artifacts.write_text(tmp / "reports" / "history.csv", _history_csv(history))
        artifacts.write_json(tmp / "reports" / "summary.json", summary)
        artifacts.install_together({tmp / "model.keras": models_dir / "model.keras",
                                    tmp / "saved_model": models_dir / "saved_model",
                                    tmp / "reports": reports_dir})


def compile_model(params, spec: FeatureSpec, num_labels: int, train_examples: int):
    """The configured architecture with Adam on a cosine learning-rate decay."""
    import keras

    from keyspot import models

    model = models.build(params.model, spec.shape, num_labels)
    steps = int(np.ceil(train_examples / params.train.batch_size)) * params.train.epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        params.train.lr, decay_steps=steps, alpha=params.train.lr_min / params.train.lr)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=params.train.label_smoothing),
                  metrics=["accuracy"])
    return model


def fit(model, params, data: EpochData, val: tuple[np.ndarray, np.ndarray], state: checkpoint.TrainingState,
        after_epoch: Callable[[dict], None]) -> None:
    """Train epoch by epoch from where `state` left off until the last epoch
    or an early stop, updating `state`; `after_epoch(row)` runs after each."""
    weights = class_weights(data.y, val[1].shape[1], params.train.class_weight_power)
    patience = params.train.patience
    # A run resumed after its early stop has nothing left to train.
    last = state.last_epoch if state.stopped_early(patience) else params.train.epochs
    first = state.last_epoch + 1
    if first > last:
        return
    # The next epoch's clips are augmented and featurised in a thread while
    # Keras trains on this one: TensorFlow leaves part of the two cores of a
    # laptop idle, and an epoch's data depends on (seed, epoch) alone, so
    # preparing it early changes no byte.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="epoch-data") as pool:
        upcoming = pool.submit(data.epoch, first)
        for epoch in range(first, last + 1):
            x, y, clip_weights = upcoming.result()
            if epoch < last:
                upcoming = pool.submit(data.epoch, epoch + 1)
            if not _fit_epoch(model, params, (x, y, clip_weights), val, weights, epoch, state, after_epoch):
                break


def _fit_epoch(model, params, examples: tuple[np.ndarray, np.ndarray, np.ndarray], val, weights: dict[int, float],
               epoch: int, state: checkpoint.TrainingState, after_epoch: Callable[[dict], None]) -> bool:
    """One epoch of training on (x, y, clip weights); whether training goes on."""
    import keras

    x, y, clip_weights = examples
    num_labels = val[1].shape[1]
    checkpoint.reseed_dropout(model, training_seed(params), epoch)
    batch = params.train.batch_size
    # The class weights as Keras would apply them (float32 per clip), times
    # each clip's engine weight.
    sample_weights = np.array([weights[i] for i in range(num_labels)], np.float32)[y] * clip_weights
    logs = model.fit(_batches((x, keras.utils.to_categorical(y, num_labels), sample_weights), batch),
                     validation_data=_batches(val, batch), epochs=1, shuffle=False, verbose=0).history
    row = {"epoch": epoch, **{k: float(v[-1]) for k, v in sorted(logs.items())}}
    improved = state.record(row, model)
    print(f"epoch {epoch}: loss {row['loss']:.4f}, accuracy {row['accuracy']:.4f}, "
          f"val_loss {row['val_loss']:.4f}, val_accuracy {row['val_accuracy']:.4f}"
          + (" (best)" if improved else ""), flush=True)
    after_epoch(row)
    if state.stopped_early(params.train.patience):
        print(f"early stop: no better val accuracy for {params.train.patience} epochs", flush=True)
        return False
    return True


def _batches(arrays: tuple, batch_size: int):
    """The arrays in order, in batches, as Keras batches numpy input (so the
    same model bytes), but with tf.data's autotuning off: its background
    thread held up each epoch's end by up to 20 s while the iterator was
    torn down (epochs of 41 s instead of 23 s on two cores)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size).with_options(options)


def _metrics(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "epoch"}


def log_outputs(mlflow, summary: dict, state: checkpoint.TrainingState, models_dir: Path, reports_dir: Path) -> None:
    from keyspot import tracking

    keras_path = models_dir / "model.keras"
    mlflow.set_tag(tracking.MODEL_HASH_TAG, tracking.file_sha256(keras_path))
    mlflow.log_metrics({"best_val_accuracy": state.best_val_accuracy, "best_epoch": state.best_epoch,
                        "model_params": summary["params"], "model_macs": summary["macs"]})
    mlflow.log_artifact(str(keras_path), "model")
    mlflow.log_artifact(str(reports_dir / "history.csv"), "train")


def run(params, features_dir: Path, models_dir: Path, reports_dir: Path,
        raw_dir: Path = Path("data/raw"), checkpoint_dir: Path | None = None) -> dict:
    """Train, keep the best epoch, write the models and reports. With
    `checkpoint_dir`, the state after each epoch is saved there and a
    restarted run resumes from it (keyspot/checkpoint.py)."""
    make_deterministic(training_seed(params))
    import keras

    from keyspot import models, tracking

    features_dir, models_dir, reports_dir = Path(features_dir), Path(models_dir), Path(reports_dir)
    spec = FeatureSpec.load(features_dir / "spec.json")
    data = EpochData(params, spec, features_dir, raw_dir)
    x_val, y_val = features.load_split(features_dir, "val")
    val = (x_val, keras.utils.to_categorical(y_val, len(spec.labels)))
    model = compile_model(params, spec, len(spec.labels), len(data.y))

    key = checkpoint.fingerprint(params, *(features_dir / f for f in ("spec.json", "train.npz", "val.npz")))
    state = checkpoint.restore(checkpoint_dir, key, model) or checkpoint.TrainingState()
    with tracking.train_run(params) as (mlflow, _):
        for row in state.history:  # a resumed run's earlier epochs, for a complete curve
            mlflow.log_metrics(_metrics(row), step=row["epoch"])

        def after_epoch(row: dict) -> None:
            # The cosine schedule's rate where the next epoch starts, the one
            # this epoch ended with: MLflow's curve of it beside the losses.
            rate = float(model.optimizer.learning_rate)
            mlflow.log_metrics({**_metrics(row), "learning_rate": rate}, step=row["epoch"])
            if checkpoint_dir is not None:
                checkpoint.save(checkpoint_dir, key, model, state)

        fit(model, params, data, val, state, after_epoch)
        # The best epoch on validation is the model, not the last one.
        model.set_weights(state.best_weights)
        summary = {"model": params.model.name, "best_epoch": state.best_epoch, "epochs_run": len(state.history),
                   "best_val_accuracy": round(state.best_val_accuracy, 6),
                   "params": int(model.count_params()), "macs": models.count_macs(model),
                   "train_examples": int(len(data.y)), "val_examples": int(len(y_val))}
        write_outputs(model, state.history, summary, models_dir, reports_dir)
        log_outputs(mlflow, summary, state, models_dir, reports_dir)
    return summary
