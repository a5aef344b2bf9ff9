"""The device's recognizer in Python: scores in, keyword detections out.

The same decisions as firmware/core/recognizer.c, step for step and in the
same integer arithmetic, so that `keyspot listen`, the streaming metrics and
the board agree on every detection (tests/test_recognizer.py feeds both the
same score streams). Scores are 0..255: an int8 model's outputs shifted by
+128, or a float model's probabilities times 256 (`scores_from_probabilities`),
which is what the int8 softmax output (scale 1/256, zero point -128) holds.

Its parameters come from the generated firmware folder (recognizer_config.h,
written by c-export from export.recognizer), so that what the board runs is
what is measured here.
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from pathlib import Path

import numpy as np

from keyspot.errors import UserError
from keyspot.labels import SILENCE, UNKNOWN

# firmware/core/recognizer.h: KEYSPOT_RECOGNIZER_MAX_RESULTS and _MAX_LABELS.
MAX_RESULTS = 64
MAX_LABELS = 64
CONFIG_HEADER = "recognizer_config.h"


class RecognizerError(UserError, ValueError):
    """Recognizer parameters that the firmware would refuse, or a config it cannot read."""


@dataclasses.dataclass(frozen=True)
class RecognizerParams:
    """keyspot_recognizer_params: export.recognizer plus the ignore mask."""
    average_window_ms: int = 1000
    detection_threshold: int = 200   # of 255; the averaged score must exceed it
    suppression_ms: int = 1500
    minimum_count: int = 3
    ignore_mask: int = 0             # bit i set: label i is never reported

    def check(self, num_labels: int) -> RecognizerParams:
        """RecognizerError where keyspot_recognizer_init() would return BAD_ARGUMENT."""
        if not 1 <= num_labels <= MAX_LABELS:
            raise RecognizerError(f"{num_labels} labels; the recognizer takes 1 to {MAX_LABELS}")
        if self.average_window_ms < 0:
            raise RecognizerError(f"average_window_ms {self.average_window_ms} is negative")
        if self.suppression_ms < 0:
            raise RecognizerError(f"suppression_ms {self.suppression_ms} is negative")
        if not 1 <= self.minimum_count <= MAX_RESULTS:
            raise RecognizerError(f"minimum_count {self.minimum_count} is outside 1..{MAX_RESULTS}")
        return self

    def replace(self, **changes) -> RecognizerParams:
        """With the given fields changed; None leaves a field as it is."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def ignore_mask(labels: tuple[str, ...] | list[str]) -> int:
    """_silence_ and _unknown_, found by name, as c-export writes the mask."""
    return sum(1 << labels.index(name) for name in (SILENCE, UNKNOWN) if name in labels)


def from_settings(recognizer, labels: tuple[str, ...] | list[str]) -> RecognizerParams:
    """From export.recognizer (keyspot.schema.Recognizer) and the labels."""
    return RecognizerParams(recognizer.average_window_ms, recognizer.detection_threshold,
                            recognizer.suppression_ms, recognizer.minimum_count, ignore_mask(labels))


_DEFINE = re.compile(r"^#define KEYSPOT_RECOGNIZER_([A-Z_]+) (0x[0-9a-fA-F]+|\d+)(?:ull)?\s*$", re.M)


def from_header(path: Path | str) -> RecognizerParams:
    """The parameters a generated recognizer_config.h gives the board (a
    generated folder, or the header itself)."""
    path = Path(path)
    if path.suffix != ".h":
        path = path / CONFIG_HEADER
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RecognizerError(f"{path}: missing; run `dvc repro c-export` to generate it") from None
    values = {name.lower(): int(value, 0) for name, value in _DEFINE.findall(text)}
    fields = [f.name for f in dataclasses.fields(RecognizerParams)]
    missing = [name for name in fields if name not in values]
    if missing:
        raise RecognizerError(f"{path}: no KEYSPOT_RECOGNIZER_{missing[0].upper()}; "
                              "regenerate it with `dvc repro c-export`")
    return RecognizerParams(**{name: values[name] for name in fields})


@dataclasses.dataclass(frozen=True)
class Recognition:
    """keyspot_recognition: found is True for a new detection."""
    found: bool
    label: int     # top label of the averaged scores; -1 before minimum_count results
    score: int     # its averaged score, 0..255


class Recognizer:
    """keyspot_recognizer, one result at a time."""

    def __init__(self, params: RecognizerParams, num_labels: int):
        self.params = params.check(num_labels)
        self.num_labels = num_labels
        # Results inside the averaging window, at most MAX_RESULTS, and the
        # running per-label sums of their scores.
        self._times: deque[int] = deque()
        self._scores: deque[np.ndarray] = deque()
        self._sums = np.zeros(num_labels, np.int64)
        self._last_detection_ms: int | None = None
        self._last_time_ms: int | None = None

    def process(self, scores, time_ms: int) -> Recognition:
        """Add the uint8 scores (0..255) of one inference made at time_ms."""
        scores = np.asarray(scores)
        if scores.shape != (self.num_labels,):
            raise ValueError(f"expected {self.num_labels} scores, got shape {scores.shape}")
        time_ms = int(time_ms)
        if self._times and time_ms < self._last_time_ms:
            raise ValueError(f"time going backwards: {time_ms} ms after {self._last_time_ms} ms")
        self._last_time_ms = time_ms
        row = scores.astype(np.int64)
        if len(self._times) == MAX_RESULTS:   # when full, the oldest result gives way
            self._drop_oldest()
        self._times.append(time_ms)
        self._scores.append(row)
        self._sums += row
        while self._times and time_ms - self._times[0] > self.params.average_window_ms:
            self._drop_oldest()
        count = len(self._times)
        if count < self.params.minimum_count:
            return Recognition(False, -1, 0)
        best = int(np.argmax(self._sums))   # the first of equal sums, as in C
        score = int(self._sums[best]) // count
        ignored = (self.params.ignore_mask >> best) & 1
        suppressed = (self._last_detection_ms is not None
                      and time_ms - self._last_detection_ms <= self.params.suppression_ms)
        found = not ignored and not suppressed and score > self.params.detection_threshold
        if found:
            self._last_detection_ms = time_ms
        return Recognition(bool(found), best, score)

    def process_int8(self, scores, time_ms: int) -> Recognition:
        """int8 model outputs, shifted by +128 as keyspot_recognizer_process_int8 does."""
        return self.process(np.asarray(scores, np.int16) + 128, time_ms)

    def state(self) -> dict:
        """What the recognizer holds, as JSON: `restore` takes it back."""
        return {"times": list(self._times), "scores": [row.tolist() for row in self._scores],
                "last_detection_ms": self._last_detection_ms, "last_time_ms": self._last_time_ms}

    def restore(self, state: dict) -> Recognizer:
        """Take back a `state()`; ValueError naming what is wrong with it."""
        try:
            times = [int(t) for t in state["times"]]
            scores = np.asarray(state["scores"], np.int64).reshape(len(times), self.num_labels)
            last_detection = state["last_detection_ms"]
            last_time = state["last_time_ms"]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"recognizer state: {err}") from None
        if len(times) > MAX_RESULTS or times != sorted(times) or np.any((scores < 0) | (scores > 255)):
            raise ValueError(f"recognizer state: at most {MAX_RESULTS} results in time order, scores 0..255")
        if (times and last_time is None) or any(v is not None and not isinstance(v, int)
                                                for v in (last_detection, last_time)):
            raise ValueError("recognizer state: last_detection_ms and last_time_ms are whole ms or null")
        self._times, self._scores = deque(times), deque(scores)
        self._sums = scores.sum(axis=0) if len(times) else np.zeros(self.num_labels, np.int64)
        self._last_detection_ms, self._last_time_ms = last_detection, last_time
        return self

    def _drop_oldest(self) -> None:
        self._times.popleft()
        self._sums -= self._scores.popleft()


def scores_from_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Float probabilities as the int8 softmax would hold them, shifted to 0..255."""
    return np.clip(np.round(np.asarray(probabilities, np.float64) * 256.0), 0, 255).astype(np.uint8)


def scores_from_int8(outputs: np.ndarray) -> np.ndarray:
    """int8 model outputs shifted by +128 to 0..255."""
    return (np.asarray(outputs, np.int16) + 128).astype(np.uint8)


def averaged(times: np.ndarray, scores: np.ndarray, average_window_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the recognizer averages at every result, for a whole stream at
    once: (top label, its averaged score, results in the window). The window
    holds the results at most average_window_ms old, and at most MAX_RESULTS
    of them, as the ring buffer does."""
    times = np.asarray(times, np.int64)
    scores = np.asarray(scores, np.int64)
    if len(times) > 1 and np.any(np.diff(times) < 0):
        raise ValueError("time going backwards in the stream")
    index = np.arange(len(times))
    first = np.maximum(np.searchsorted(times, times - average_window_ms, side="left"), index - MAX_RESULTS + 1)
    totals = np.concatenate([np.zeros((1, scores.shape[1]), np.int64), np.cumsum(scores, axis=0)])
    sums = totals[index + 1] - totals[first]
    count = index + 1 - first
    best = np.argmax(sums, axis=1)   # the first of equal sums, as in C
    return best, sums[index, best] // count, count


def detect(times: np.ndarray, scores: np.ndarray, params: RecognizerParams,
           averages: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> list[tuple[int, int, int]]:
    """(time, label, score) of every detection over a whole stream of uint8
    scores: the decisions `Recognizer.process` makes one result at a time,
    computed at once so that many parameter sets can be tried on one stream.
    `averages` is `averaged(times, scores, params.average_window_ms)` where
    the caller has it already: calibration tries hundreds of thresholds,
    counts and suppressions on each window, and averaging is most of the cost."""
    times = np.asarray(times, np.int64)
    best, score, count = averaged(times, scores, params.average_window_ms) if averages is None else averages
    ignored = (np.right_shift(params.ignore_mask, best.astype(np.uint64)) & 1).astype(bool) \
        if params.ignore_mask else np.zeros(len(best), bool)
    candidates = np.flatnonzero((count >= params.minimum_count) & ~ignored & (score > params.detection_threshold))
    out, last = [], None
    for i in candidates:
        t = int(times[i])
        if last is None or t - last > params.suppression_ms:
            out.append((t, int(best[i]), int(score[i])))
            last = t
    return out
