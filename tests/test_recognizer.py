"""The Python recognizer (keyspot/recognizer.py) and the firmware's
(firmware/core/recognizer.c) make the same decisions: both get the same
score streams, random and made to hit the edge cases (ties, equal and
jumping times, averages exactly at the threshold, more results than the
window holds), and every result, detection or not, is compared."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from host_recognizer import build_keyspot_recognize

from keyspot import recognizer as rec
from keyspot.export.c_model import DEFAULT_RECOGNIZER, recognizer_config_h
from keyspot.recognizer import MAX_LABELS, MAX_RESULTS, Recognizer, RecognizerError, RecognizerParams


@pytest.fixture(scope="module")
def c_recognizer(tmp_path_factory):
    """The host build of firmware/core/host/keyspot_recognize.c."""
    return build_keyspot_recognize(tmp_path_factory.mktemp("recognizer"))


def run_c(program: Path, params: RecognizerParams, num_labels: int, times, scores) -> list[tuple]:
    """Every result of the C recognizer: (time, label, score, found)."""
    text = "".join(f"{t} " + " ".join(str(int(v)) for v in row) + "\n" for t, row in zip(times, scores, strict=True))
    args = [str(program), "--every", str(num_labels), str(params.average_window_ms),
            str(params.detection_threshold), str(params.suppression_ms), str(params.minimum_count),
            hex(params.ignore_mask)]
    proc = subprocess.run(args, input=text.encode(), capture_output=True, check=True)
    return [tuple(int(v) for v in line.split()) for line in proc.stdout.decode().splitlines()]


def run_python(params: RecognizerParams, num_labels: int, times, scores) -> list[tuple]:
    recognizer = Recognizer(params, num_labels)
    out = []
    for t, row in zip(times, scores, strict=True):
        r = recognizer.process_int8(row, int(t))
        out.append((int(t), r.label, r.score, int(r.found)))
    return out


def _random_case(rng: np.random.Generator):
    """One stream and parameters, drawn to reach the recognizer's edge cases."""
    num_labels = int(rng.choice([1, 2, 3, 12, MAX_LABELS]))
    params = RecognizerParams(
        average_window_ms=int(rng.choice([0, 1, 50, 300, 1000, 3000])),
        detection_threshold=int(rng.choice([0, 100, 128, 200, 254, 255])),
        suppression_ms=int(rng.choice([0, 100, 1500, 100_000])),
        minimum_count=int(rng.choice([1, 2, 3, 10, MAX_RESULTS])),
        ignore_mask=int(rng.integers(0, 1 << num_labels, dtype=np.uint64)) if rng.random() < 0.7 else 0)
    n = int(rng.integers(1, 400))
    # Steps: the same time again, 10 ms (more results than the ring holds in
    # a 3 s window), the board's 100 ms, the window's edge, long silences.
    steps = rng.choice([0, 1, 10, 100, 100, 100, 999, 1000, 1001, 1500, 1501, 60_000], size=n)
    times = int(rng.integers(0, 1 << 20)) + np.cumsum(steps) - steps[0]
    kind = rng.choice(["uniform", "ties", "levels", "one-label"])
    if kind == "uniform":
        scores = rng.integers(-128, 128, size=(n, num_labels))
    elif kind == "ties":   # equal sums: the first label wins in both
        scores = np.repeat(rng.integers(-128, 128, size=(n, 1)), num_labels, axis=1)
        scores[:, rng.integers(0, num_labels)] -= rng.integers(0, 2, size=n)
    elif kind == "levels":   # few distinct values: averages land exactly on thresholds
        scores = rng.choice([-128, -1, 0, 72, 73, 126, 127], size=(n, num_labels))
    else:
        scores = np.full((n, num_labels), -128)
        scores[np.arange(n), rng.integers(0, num_labels, size=n)] = rng.integers(0, 128, size=n)
    return params, num_labels, times, scores.clip(-128, 127)


def test_python_and_c_recognizers_agree_on_every_result(c_recognizer):
    rng = np.random.default_rng(20261203)
    results = detections = 0
    for _ in range(300):
        params, num_labels, times, scores = _random_case(rng)
        c = run_c(c_recognizer, params, num_labels, times, scores)
        py = run_python(params, num_labels, times, scores)
        assert py == c, (params, num_labels)
        # The whole-stream form gives the same detections.
        shifted = np.asarray(scores) + 128
        assert rec.detect(times, shifted, params) == [(t, label, score) for t, label, score, found in c if found]
        results += len(c)
        detections += sum(found for *_, found in c)
    print(f"\n{results} results compared, {detections} of them detections")
    assert detections > 100   # the cases do reach detections


def test_threshold_equality_is_not_a_detection(c_recognizer):
    # Averaged 200 of 255 (int8 72) does not exceed threshold 200; 201 does.
    labels = 3
    times = np.arange(0, 2000, 100)
    for level, found in ((72, False), (73, True)):
        scores = np.full((len(times), labels), -128)
        scores[:, 2] = level
        params = RecognizerParams(ignore_mask=0b11)
        py = run_python(params, labels, times, scores)
        assert py == run_c(c_recognizer, params, labels, times, scores)
        assert any(f for *_, f in py) == found


def test_a_stream_of_more_results_than_the_ring_holds(c_recognizer):
    # 1 ms apart in a 1000 ms window: the oldest give way at MAX_RESULTS.
    times = np.arange(0, 300)
    scores = np.where(np.arange(300)[:, None] % 7 == np.arange(2), 127, -128)
    params = RecognizerParams(minimum_count=MAX_RESULTS, detection_threshold=0)
    py = run_python(params, 2, times, scores)
    assert py == run_c(c_recognizer, params, 2, times, scores)
    assert py[MAX_RESULTS - 2][1] == -1 and py[MAX_RESULTS - 1][1] >= 0


def test_time_going_backwards_is_refused():
    recognizer = Recognizer(RecognizerParams(), 2)
    recognizer.process_int8([0, 0], 100)
    recognizer.process_int8([0, 0], 100)
    with pytest.raises(ValueError, match="backwards"):
        recognizer.process_int8([0, 0], 99)


def test_parameters_the_firmware_refuses_are_refused():
    for bad in (dict(average_window_ms=-1), dict(suppression_ms=-1), dict(minimum_count=0),
                dict(minimum_count=MAX_RESULTS + 1)):
        with pytest.raises(RecognizerError):
            Recognizer(RecognizerParams(**bad), 3)
    with pytest.raises(RecognizerError):
        Recognizer(RecognizerParams(), MAX_LABELS + 1)


def test_header_gives_what_c_export_wrote(tmp_path):
    labels = ("_silence_", "_unknown_", "yes", "no")
    (tmp_path / "recognizer_config.h").write_text(recognizer_config_h("", labels, DEFAULT_RECOGNIZER))
    assert rec.from_header(tmp_path) == rec.from_settings(DEFAULT_RECOGNIZER, labels)
    assert rec.from_header(tmp_path).ignore_mask == rec.ignore_mask(labels) == 0b11
    assert rec.ignore_mask(("yes", "no", "_unknown_")) == 0b100
    with pytest.raises(RecognizerError, match="dvc repro c-export"):
        rec.from_header(tmp_path / "elsewhere")


def test_scores_are_what_the_int8_softmax_holds():
    assert rec.scores_from_int8(np.array([-128, 0, 127])).tolist() == [0, 128, 255]
    assert rec.scores_from_probabilities(np.array([0.0, 0.5, 0.999, 1.0])).tolist() == [0, 128, 255, 255]
