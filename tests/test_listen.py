"""`keyspot listen`: the board's chain over a stream (keyspot/listen.py).

The chain's framing is checked against the features of the whole stream
with a model that keeps the windows it is given; the command line runs on
the smoke pipeline's model. tests/test_firmware_core.py checks that the
chain finds spoken keywords as the C chain does.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import soundfile

from keyspot import audio, features
from keyspot.export.c_model import DEFAULT_RECOGNIZER, recognizer_config_h
from keyspot.features import FeatureSpec
from keyspot.listen import FRAMES_PER_INFERENCE, FloatModel, Listener, TFLiteModel
from keyspot.recognizer import RecognizerParams, from_header

REPO = Path(__file__).resolve().parents[1]
LABELS = ("_silence_", "_unknown_", "yes", "no")


def _spec() -> FeatureSpec:
    return FeatureSpec(kind="mfcc", sample_rate=16000, clip_samples=16000, window_samples=480,
                       hop_samples=320, fft_size=512, mel_bins=40, mel_fmin=20.0, mel_fmax=8000.0,
                       num_mfcc=10, log_floor=1e-10, labels=LABELS, mean=(1.0,) * 10, std=(20.0,) * 10)


class WindowsKept:
    """A model that keeps every input window and scores "yes" high."""

    def __init__(self):
        self.windows = []

    def scores(self, windows: np.ndarray) -> np.ndarray:
        self.windows.extend(windows.copy())
        return np.tile(np.array([0, 0, 250, 5], np.uint8), (len(windows), 1))


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    envelope = 0.5 + 0.5 * np.sin(np.arange(n) * 2 * np.pi * 3 / 16000)
    return audio.to_int16(rng.standard_normal(n) * 0.1 * envelope)


def test_frames_per_inference_is_the_boards():
    main_c = (REPO / "firmware/psoc6/source/main.c").read_text()
    assert re.search(rf"#define FRAMES_PER_INFERENCE {FRAMES_PER_INFERENCE}\b", main_c)


def test_windows_are_the_boards_last_frames_neutral_before_the_first():
    spec, pcm = _spec(), _speechlike(3.3)
    model = WindowsKept()
    times, scores = Listener(spec, model, RecognizerParams()).scores(pcm)
    frames = features.normalise(features.unnormalised_frames(pcm, spec), spec)
    newest = np.arange(FRAMES_PER_INFERENCE - 1, len(frames), FRAMES_PER_INFERENCE)
    assert times.tolist() == ((newest * spec.hop_samples + spec.window_samples) * 1000 // 16000).tolist()
    assert times[0] == 110 and np.all(np.diff(times) == 100)   # 5 hops of 20 ms
    padded = np.concatenate([np.zeros((spec.num_frames - 1, spec.num_coefficients), np.float32), frames])
    for j, window in zip(newest, model.windows, strict=True):
        np.testing.assert_array_equal(window, padded[j:j + spec.num_frames])
    assert scores.shape == (len(times), len(LABELS))


def test_a_clip_aligned_with_an_inference_gets_the_clips_own_features():
    spec, clip = _spec(), _speechlike(1.0, seed=1)
    newest = 14 * FRAMES_PER_INFERENCE - 1                 # an inference's newest frame
    start = (newest - spec.num_frames + 1) * spec.hop_samples
    stream = np.concatenate([_speechlike(start / 16000, seed=2), clip, np.zeros(8000, np.int16)])
    model = WindowsKept()
    times, _ = Listener(spec, model, RecognizerParams()).scores(stream)
    at = times.tolist().index((newest * spec.hop_samples + spec.window_samples) * 1000 // 16000)
    np.testing.assert_allclose(model.windows[at], features.compute(clip, spec)[0], atol=1e-4)


def test_pieces_of_any_size_give_the_same_inferences_and_detections():
    spec, pcm = _spec(), _speechlike(4.0, seed=3)
    whole_model, pieces_model = WindowsKept(), WindowsKept()
    whole = Listener(spec, whole_model, RecognizerParams(ignore_mask=0b11))
    whole_times, _ = whole.scores(pcm)
    pieces = Listener(spec, pieces_model, RecognizerParams(ignore_mask=0b11))
    rng, at, times, found = np.random.default_rng(4), 0, [], []
    while at < len(pcm):
        size = int(rng.choice([1, 7, 319, 320, 321, 1600, 5000]))
        got_times, got_scores = pieces.scores(pcm[at:at + size])
        times.extend(got_times.tolist())
        found.extend(pieces.detections(got_times, got_scores))
        at += size
    assert times == whole_times.tolist()
    np.testing.assert_allclose(np.stack(pieces_model.windows), np.stack(whole_model.windows), atol=1e-4)
    # "yes" at 250 of 255 from the first result on: detected once the window
    # holds minimum_count results, then again after each suppression.
    assert [d.label for d in found] == ["yes"] * 3
    assert [d.time_ms for d in found] == [310, 1910, 3510]


def _run(cmd, cwd: Path, env: dict, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def _constant_int8_model(spec: FeatureSpec, label: str) -> bytes:
    """An int8 model that scores `label` at about 0.93 whatever it hears: its
    detections are known in advance, so the command's own work shows."""
    import tensorflow as tf

    bias = np.zeros(len(spec.labels), np.float32)
    bias[spec.labels.index(label)] = np.log(0.93 / 0.07 * (len(spec.labels) - 1))
    model = tf.keras.Sequential([
        tf.keras.Input((*spec.shape, 1), batch_size=1),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(len(spec.labels), kernel_initializer="zeros",
                              bias_initializer=tf.keras.initializers.Constant(bias)),
        tf.keras.layers.Softmax(),
    ])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.standard_normal((1, *spec.shape, 1)).astype(np.float32)]
                                                for _ in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def test_listen_command_reports_detections_and_names_bad_files(pipeline, tmp_path):
    root, env = pipeline["root"], pipeline["env"]
    spec = FeatureSpec.load(root / "data/features/spec.json")
    keyword = next(label for label in spec.labels if not label.startswith("_"))
    model = tmp_path / "always.tflite"
    model.write_bytes(_constant_int8_model(spec, keyword))
    clips = [audio.load_clip(wav, 16000, 16000) for wav in sorted((root / "data/raw/clips").rglob("*.wav"))[:4]]
    stream = np.concatenate([part for clip in clips for part in (np.zeros(8000, np.int16), clip)])
    mono = tmp_path / "stream.wav"
    audio.write_wav(mono, stream, 16000)
    stereo = tmp_path / "stream_44k_stereo.wav"
    resampled = audio.resample(stream.astype(np.float32) / 32768, 16000, 44100)
    soundfile.write(stereo, np.stack([resampled, resampled], axis=1), 44100, subtype="PCM_16")
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("these are not samples\n")
    # micro_speech's parameters, as a generated folder gives them.
    firmware = tmp_path / "generated"
    firmware.mkdir()
    (firmware / "recognizer_config.h").write_text(recognizer_config_h("", spec.labels, DEFAULT_RECOGNIZER))
    result = _run(["keyspot", "listen", "--json", "--model", str(model), "--firmware", str(firmware),
                   str(mono), str(not_audio), str(stereo)], root, env, check=False)
    assert result.returncode == 1, result.stderr
    heard = json.loads(result.stdout)
    assert [h["path"] for h in heard] == [str(mono), str(not_audio), str(stereo)]
    assert "error" in heard[1] and str(not_audio) in heard[1]["error"]
    # The bad file's line and nothing else: no runtime's start-up notes.
    assert result.stderr.splitlines() == [f"keyspot listen: {heard[1]['error']}"]
    # The third result (110, 210, 310 ms) averages above 200, then one
    # detection per 1.5 s of suppression.
    assert [d["time_s"] for d in heard[0]["detections"]] == [0.31, 1.91, 3.51, 5.11]
    assert heard[2]["detections"] == heard[0]["detections"]   # 44.1 kHz stereo: the same stream
    assert {d["label"] for d in heard[0]["detections"]} == {keyword}
    assert all(d["score"] == round(d["score_255"] / 256, 4) > 0.9 for d in heard[0]["detections"])
    # Flags override the generated folder; text output names the file on each line.
    plain = _run(["keyspot", "listen", "--model", str(model), "--firmware", str(firmware), "--suppression-ms", "3000",
                  str(mono)], root, env)
    assert [line.split("\t")[1].strip() for line in plain.stdout.splitlines()] == ["0.31 s", "3.41 s"]
    assert all(line.startswith(f"{mono}\t") and line.split("\t")[2] == keyword for line in plain.stdout.splitlines())
    # Without --firmware: the pipeline's generated folder (export.out_dir), as calibrated.
    board = from_header(root / "firmware/psoc6/source/generated")
    default = json.loads(_run(["keyspot", "listen", "--json", "--model", str(model), "--threshold", "200",
                               str(mono)], root, env).stdout)
    expected = Listener(spec, TFLiteModel.load(model.read_bytes(), spec),
                        board.replace(detection_threshold=200)).feed(stream)
    assert [(d["time_s"], d["label"]) for d in default[0]["detections"]] == \
        [(round(d.time_ms / 1000, 3), d.label) for d in expected] != []


def _random_keras_model(spec: FeatureSpec, path: Path) -> Path:
    """A Keras model with seeded random weights, saved at `path`: its scores
    move with what it hears, where the smoke model (two epochs) scores
    every label about alike."""
    import keras

    keras.utils.set_random_seed(0)
    keras.Sequential([
        keras.Input((*spec.shape, 1)),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(len(spec.labels)),
        keras.layers.Softmax(),
    ]).save(path)
    return path


def test_listen_float_runs_the_keras_model_with_nothing_else_on_stderr(pipeline, tmp_path):
    """`--float` listens with models/model.keras, `--model` with any .keras
    file: the detections of the same chain run here on that model, and no
    TensorFlow line on stderr."""
    root, env = pipeline["root"], pipeline["env"]
    spec = FeatureSpec.load(root / "data/features/spec.json")
    keyword_clips = [wav for wav in sorted((root / "data/raw/clips").rglob("*.wav"))
                     if not wav.parent.name.startswith("_")]
    clips = [audio.load_clip(wav, 16000, 16000) for wav in keyword_clips[:6]]
    stream = np.concatenate([part for clip in clips for part in (np.zeros(8000, np.int16), clip)])
    wav = tmp_path / "stream.wav"
    audio.write_wav(wav, stream, 16000)

    pipeline_model = _run(["keyspot", "listen", "--float", "--json", str(wav)], root, env)
    assert pipeline_model.stderr == ""
    assert [entry["path"] for entry in json.loads(pipeline_model.stdout)] == [str(wav)]

    keras_file = _random_keras_model(spec, tmp_path / "random.keras")
    board = from_header(root / "firmware/psoc6/source/generated").replace(average_window_ms=300)
    model = FloatModel(keras_file, spec)
    _, scores = Listener(spec, model, board).scores(stream)
    threshold = int(np.percentile(scores.max(axis=1), 75))   # under the top quarter of results
    result = _run(["keyspot", "listen", "--model", str(keras_file), "--json", "--window-ms", "300",
                   "--threshold", str(threshold), str(wav)], root, env)
    assert result.stderr == ""
    heard = json.loads(result.stdout)[0]["detections"]
    expected = Listener(spec, model, board.replace(detection_threshold=threshold)).feed(stream)
    assert heard == [d.as_dict() for d in expected] != []


def test_listen_command_refuses_bad_use(pipeline):
    root, env = pipeline["root"], pipeline["env"]
    nothing = _run(["keyspot", "listen"], root, env, check=False)
    assert nothing.returncode == 2 and "give audio files or --mic" in nothing.stderr
    bad = _run(["keyspot", "listen", "--minimum-count", "0", "x.wav"], root, env, check=False)
    assert bad.returncode == 2 and "minimum_count 0" in bad.stderr and "Traceback" not in bad.stderr
    elsewhere = _run(["keyspot", "listen", "--firmware", "nowhere", "x.wav"], root, env, check=False)
    assert elsewhere.returncode == 2 and "nowhere/recognizer_config.h: missing" in elsewhere.stderr


def test_listen_mic_says_when_there_is_no_microphone(pipeline):
    from keyspot.listen_mic import MicError, default_input, import_sounddevice

    try:
        default_input(import_sounddevice())
    except MicError:
        pass
    else:
        import pytest

        pytest.skip("this machine has a sound input device")
    root, env = pipeline["root"], pipeline["env"]
    result = _run(["keyspot", "listen", "--mic"], root, env, check=False)
    assert result.returncode == 2, result.stderr
    assert "keyspot listen: --mic" in result.stderr and "Traceback" not in result.stderr
