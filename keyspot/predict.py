"""Label audio files with the float or the int8 model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from keyspot import audio, features
from keyspot.features import FeatureSpec

AUDIO_SUFFIXES = {".wav", ".wave", ".flac", ".ogg"}


def expand(paths: list[str]) -> list[Path]:
    """Files as given; folders become the audio files inside them, sorted."""
    out = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES))
        else:
            out.append(path)
    return out


class Classifier:
    """Features per the spec, then the Keras model or a TFLite model.

    A .tflite model runs on the LiteRT interpreter with TFLite's reference
    kernels (the arithmetic TensorFlow Lite Micro uses on the board), so
    `keyspot predict --int8` never imports TensorFlow and starts in well
    under a second; only the Keras model needs TensorFlow."""

    def __init__(self, spec_path: Path, model_path: Path):
        self.spec = FeatureSpec.load(spec_path)
        self.model_path = Path(model_path)
        if not self.model_path.exists():
            raise FileNotFoundError(f"{self.model_path}: no model; run `dvc repro` (or `dvc pull`) first")
        if self.model_path.suffix == ".tflite":
            from keyspot.tflite_runner import TFLiteRunner

            self.runner = TFLiteRunner.litert(self.model_path.read_bytes(), reference_kernels=True)
            self.runner.check_spec(self.spec)
            self.model = None
        else:
            from keyspot import keras_files

            self.model = keras_files.load_model(self.model_path)

    def probabilities(self, pcm: np.ndarray) -> np.ndarray:
        x = features.compute(pcm, self.spec)[..., None]
        if self.model is not None:
            # One clip: a direct call, not model.predict, whose tf.data
            # pipeline can make TensorFlow log an error line about its own
            # dataset ops on stderr, which a user would take for theirs.
            return self.model(x, training=False).numpy()
        return self.runner(x)

    def classify(self, paths: list[Path]) -> Iterator[tuple[Path, dict | None, str | None]]:
        """(path, {"label", "probabilities"}, None) or (path, None, error) per file."""
        for path in paths:
            try:
                pcm = audio.load_clip(path, self.spec.sample_rate, self.spec.clip_samples)
            except audio.AudioError as err:
                yield path, None, str(err)
                continue
            p = self.probabilities(pcm)[0]
            yield path, {"label": self.spec.labels[int(p.argmax())],
                         "probabilities": {label: round(float(v), 4) for label, v in zip(self.spec.labels, p, strict=True)}}, None
