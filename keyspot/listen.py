"""The device's chain over a continuous stream: frontend, model, recognizer.

The board computes one feature frame per hop as the audio arrives, keeps the
last clip's worth of frames (neutral, the zero point, before any were
computed), runs the model after every FRAMES_PER_INFERENCE new frames and
gives its scores to the recognizer with the time at the end of the newest
frame (firmware/psoc6/source/main.c and feature_provider.c). `Listener` does
the same in Python, over audio of any length fed in pieces of any size, so
that a file, a live microphone and the streaming metrics all see what the
board would.

Imports no TensorFlow for the int8 model (the LiteRT interpreter runs it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from keyspot import audio, features
from keyspot.features import FeatureSpec
from keyspot.recognizer import Recognizer, RecognizerParams, scores_from_int8, scores_from_probabilities

# firmware/psoc6/source/main.c: the model runs after this many new frames
# (5 hops of 20 ms: every 100 ms). tests/test_listen.py reads main.c's value.
FRAMES_PER_INFERENCE = 5
# A stream's frames, at most: times in ms stay far inside int32, as the board keeps them.
MAX_FRAMES = 1 << 26   # 15 days at 20 ms


class TFLiteModel:
    """A .tflite model, int8 or float, on a TFLiteRunner: features in, 0..255 scores out."""

    def __init__(self, runner):
        self.runner = runner

    @classmethod
    def load(cls, model: bytes, spec: FeatureSpec) -> TFLiteModel:
        """On the LiteRT interpreter, which needs no TensorFlow."""
        from keyspot.tflite_runner import TFLiteRunner

        return cls(TFLiteRunner.litert(model).check_spec(spec))

    def scores(self, windows: np.ndarray) -> np.ndarray:
        x = windows[..., None]
        if self.runner.quantized:
            return scores_from_int8(self.runner.outputs(x))
        return scores_from_probabilities(self.runner(x))


class FloatModel:
    """The Keras model: features in, probabilities as 0..255 scores out."""

    def __init__(self, path: Path, spec: FeatureSpec):
        from keyspot import keras_files

        self.model = keras_files.load_model(path)
        want = (None, *spec.shape, 1)
        if tuple(self.model.input_shape) != want:
            raise ValueError(f"{path}: model input {self.model.input_shape} does not match the "
                             f"feature spec's {want}")

    # Windows per call: a 20-minute stream has 12,000 of them.
    BATCH = 256

    def scores(self, windows: np.ndarray) -> np.ndarray:
        # Direct calls, not model.predict: its tf.data pipeline can make
        # TensorFlow log an error line about its own dataset ops on stderr,
        # which a user would take for a fault in their audio.
        x = windows[..., None].astype(np.float32, copy=False)
        probabilities = [self.model(x[start:start + self.BATCH], training=False).numpy()
                         for start in range(0, len(x), self.BATCH)]
        return scores_from_probabilities(np.concatenate(probabilities) if probabilities
                                         else np.zeros((0, self.model.output_shape[-1]), np.float32))


def load_model(path: Path, spec: FeatureSpec):
    """TFLiteModel for a .tflite file, FloatModel for a .keras file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no model; run `dvc repro` (or `dvc pull`) first")
    if path.suffix == ".tflite":
        return TFLiteModel.load(path.read_bytes(), spec)
    return FloatModel(path, spec)


@dataclasses.dataclass(frozen=True)
class Detection:
    time_ms: int   # end of the newest frame the model had heard, as on the board
    label: str
    score: int     # averaged score, 0..255

    def as_dict(self) -> dict:
        return {"time_s": round(self.time_ms / 1000, 3), "label": self.label,
                "score": round(self.score / 256, 4), "score_255": self.score}


class Listener:
    """Feed int16 PCM at the spec's rate, in pieces of any size; get the
    model's scores at each inference and the recognizer's detections."""

    def __init__(self, spec: FeatureSpec, model, params: RecognizerParams,
                 frames_per_inference: int = FRAMES_PER_INFERENCE):
        self.spec = spec
        self.model = model
        self.frames_per_inference = frames_per_inference
        self.recognizer = Recognizer(params, len(spec.labels))
        self._pending = np.zeros(0, np.int16)   # samples not yet in a computed frame
        self._next_frame = 0                    # index of the next frame to compute
        # The model's input: the last num_frames frames, neutral at first.
        self._history = np.zeros((spec.num_frames - 1, spec.num_coefficients), np.float32)

    def scores(self, pcm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add samples; (times in ms, uint8 scores) of the inferences they complete."""
        spec, hop = self.spec, self.spec.hop_samples
        self._pending = np.concatenate([self._pending, np.asarray(pcm, np.int16)])
        new = features.frame_count(len(self._pending), spec)
        if new == 0:
            return np.zeros(0, np.int64), np.zeros((0, len(spec.labels)), np.uint8)
        fresh = features.normalise(features.unnormalised_frames(self._pending, spec), spec)
        self._pending = self._pending[new * hop:]
        history = np.concatenate([self._history, fresh])
        first = self._next_frame
        self._next_frame += new
        self._history = history[-(spec.num_frames - 1):]
        # Frame j is newest at an inference when j + 1 is a multiple of frames_per_inference.
        step = self.frames_per_inference
        newest = np.arange(first + (-(first + 1)) % step, first + new, step)
        if len(newest) == 0:
            return np.zeros(0, np.int64), np.zeros((0, len(spec.labels)), np.uint8)
        # history row of frame j: j - first + (num_frames - 1); its window ends there.
        windows = np.lib.stride_tricks.sliding_window_view(history, spec.num_frames, axis=0)
        windows = windows[newest - first].transpose(0, 2, 1)
        times = (newest * hop + spec.window_samples) * 1000 // spec.sample_rate
        return times.astype(np.int64), self.model.scores(np.ascontiguousarray(windows))

    def state(self) -> dict:
        """Where the listener is, as JSON, so that a stream can go on in
        another process (keyspot serve's /listen): `restore` takes it back."""
        return {"pending": self._pending.tolist(), "next_frame": self._next_frame,
                "history": [float(v) for v in self._history.ravel()], "recognizer": self.recognizer.state()}

    def restore(self, state: dict) -> Listener:
        """Take back a `state()`; ValueError naming what is wrong with it."""
        spec = self.spec
        try:
            pending = np.asarray(state["pending"], np.int64)
            next_frame = state["next_frame"]
            history = np.asarray(state["history"], np.float32).reshape(spec.num_frames - 1, spec.num_coefficients)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"listener state: {err}") from None
        if (pending.ndim != 1 or len(pending) >= spec.window_samples + spec.hop_samples
                or np.any((pending < -32768) | (pending > 32767))):
            raise ValueError("listener state: pending holds less than a frame and a hop of int16 samples")
        if (not isinstance(next_frame, int) or isinstance(next_frame, bool) or not 0 <= next_frame < MAX_FRAMES
                or not np.all(np.isfinite(history))):
            raise ValueError("listener state: next_frame is a frame index, history finite features")
        self.recognizer.restore(state.get("recognizer") or {})
        self._pending, self._next_frame, self._history = pending.astype(np.int16), next_frame, history
        return self

    def detections(self, times: Iterable[int], scores: np.ndarray) -> list[Detection]:
        """Run the recognizer over scores from `scores()`."""
        out = []
        for t, row in zip(times, scores, strict=True):
            result = self.recognizer.process(row, int(t))
            if result.found:
                out.append(Detection(int(t), self.spec.labels[result.label], result.score))
        return out

    def feed(self, pcm: np.ndarray) -> list[Detection]:
        """Add samples; the detections they bring."""
        return self.detections(*self.scores(pcm))


def listen_file(spec: FeatureSpec, model, params: RecognizerParams, path: Path | str) -> list[Detection]:
    """Every detection in one file, heard from the start as a board just switched on would."""
    pcm = audio.load_pcm(path, spec.sample_rate)
    return Listener(spec, model, params).feed(pcm)
