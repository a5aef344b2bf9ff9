"""firmware/core: the C frontend computes training's features, on the host and
on a Cortex-M4F under QEMU, and the recognizer turns scores into detections.

The `fx` fixture is independent of the pipeline: a realistic feature spec
(16 kHz, 1 s, 30 ms window, 20 ms hop, 512-point FFT, 40 mel bins, 10 MFCC)
with statistics measured on espeak-ng words, a tiny int8 model, and the
generated folder written by keyspot.export, compiled with firmware/core/Makefile.

The shared smoke pipeline (the `pipeline` fixture of tests/conftest.py) checks
every clip of its test split through the generated folder that c-export wrote,
before and after `dvc exp run` changes a feature parameter. The `keywords`
fixture trains a small model that tells "yes" from "no", for the recognizer to
find them in a stream of words and silence.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from board_helpers import espeak_wav, write_test_clips
from host_recognizer import build_keyspot_recognize

from keyspot import audio, features
from keyspot.export import ExportError, export, generate
from keyspot.export.c_model import header_comment
from keyspot.features import FeatureSpec
from keyspot.tflite_runner import quantize_input

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning"),
    pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning"),
]

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "firmware/core"
LABELS = ("_silence_", "_unknown_", "yes", "no", "up")
NUM_LABELS = len(LABELS)
WORDS = [("yes", "en-us"), ("no", "en"), ("up", "en-us+f3"), ("seven", "en+m3"),
         ("stop", "en-gb"), ("left", "en-us+f2"), ("yes", "en+f4"), ("go", "en-us+m1")]
# C float32 vs the numpy reference, in normalised units (feature std = 1).
FLOAT_BOUND = 1e-3
# A pure tone leaves mel bands at -110 dB or less next to its peak, below a
# float32 FFT's round-off floor (about 1e-10 of the peak power), where numpy's
# pocketfft stays exact; there the bound is looser. Speech, noise, silence and
# clipped square waves have no such valleys.
TONE_BOUND = 1e-2

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                               reason="needs host gcc and make")


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    """Run a build or program; on failure show its output, not just the exit code."""
    result = subprocess.run([str(c) for c in cmd], capture_output=True, **kwargs)
    assert result.returncode == 0, (result.stdout + result.stderr).decode("utf-8", "replace")
    return result


def _base_spec(**changes) -> FeatureSpec:
    values = dict(kind="mfcc", sample_rate=16000, clip_samples=16000, window_samples=480,
                  hop_samples=320, fft_size=512, mel_bins=40, mel_fmin=20.0, mel_fmax=4000.0,
                  num_mfcc=10, log_floor=1e-10, labels=LABELS)
    return FeatureSpec(**{**values, **changes})


def _speech(tmp: Path, spec: FeatureSpec) -> tuple[list[str], np.ndarray]:
    clips = []
    for i, (word, voice) in enumerate(WORDS):
        wav = tmp / f"{i}_{word}.wav"
        espeak_wav(wav, word, voice)
        clips.append(audio.load_clip(wav, spec.sample_rate, spec.clip_samples))
    return [f"espeak {word} ({voice})" for word, voice in WORDS], np.stack(clips)


def _edge_cases(spec: FeatureSpec, speech: np.ndarray) -> tuple[list[str], np.ndarray]:
    n, rng = spec.clip_samples, np.random.default_rng(0)
    t = np.arange(n)
    square = np.where((t // 18) % 2 == 0, 32767, -32768)                      # 444 Hz, full scale
    clipped_sine = np.clip(np.round(3 * 32767 * np.sin(2 * np.pi * 300 * t / 16000)), -32768, 32767)
    loud_speech = np.clip(speech[0].astype(np.int64) * 16, -32768, 32767)      # hard clipping
    half_silent = np.concatenate([np.zeros(n // 2), speech[1][: n - n // 2]])  # silence, then a word
    clips = {
        "silence": np.zeros(n),
        "full-scale square": square,
        "clipped sine": clipped_sine,
        "clipped speech": loud_speech,
        "white noise, full scale": rng.integers(-32768, 32768, n),
        "white noise, +-2 LSB": rng.integers(-2, 3, n),
        "single click": np.where(t == n // 3, 32767, 0),
        "half silent": half_silent,
    }
    return list(clips), np.stack([np.asarray(c).astype(np.int16) for c in clips.values()])


def _tone(spec: FeatureSpec) -> np.ndarray:
    t = np.arange(spec.clip_samples)
    return np.round(20000 * np.sin(2 * np.pi * 440 * t / spec.sample_rate)).astype(np.int16)[None]


def _tiny_int8_model(spec: FeatureSpec, calibration: np.ndarray) -> bytes:
    import tensorflow as tf

    frames, coefficients = spec.shape
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.Input((frames, coefficients, 1), batch_size=1),
        tf.keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(len(spec.labels)),
        tf.keras.layers.Softmax(),
    ])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None, ..., None]] for x in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def _interpreter(model: bytes):
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(
        model_content=model, experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    return interpreter


def _io_quantization(model: bytes) -> dict:
    interpreter = _interpreter(model)
    (in_scale, in_zero), = [interpreter.get_input_details()[0]["quantization"]]
    (out_scale, out_zero), = [interpreter.get_output_details()[0]["quantization"]]
    return {"input_scale": float(in_scale), "input_zero_point": int(in_zero),
            "output_scale": float(out_scale), "output_zero_point": int(out_zero)}


def _predict(model: bytes, x_int8: np.ndarray) -> np.ndarray:
    interpreter = _interpreter(model)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for example in x_int8:
        interpreter.set_tensor(inp["index"], example.reshape(inp["shape"]))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.stack(outputs)


def _export_inputs(root: Path, model: bytes, spec: FeatureSpec, report: dict, recognizer=None) -> Path:
    """The three c-export inputs under `root`; export them to root/generated
    (with `recognizer` as export.recognizer, if given)."""
    (root / "model_int8.tflite").write_bytes(model)
    spec.save(root / "spec.json")
    (root / "quantize.json").write_text(json.dumps(report))
    export(root / "model_int8.tflite", root / "spec.json", root / "quantize.json", root / "generated",
           **({"recognizer": recognizer} if recognizer else {}))
    return root / "generated"


def _build_host(generated: Path, build: Path) -> Path:
    _run(["make", "-s", "-C", CORE, f"GENERATED={generated}", f"BUILD={build}", "host"])
    return build


def _c_features(build: Path, pcm: np.ndarray, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(float32, int8) features of int16 clips from the host build of the frontend."""
    out_float, out_int8 = build / "features.f32", build / "features.i8"
    _run([build / "keyspot_features", "-", out_float, out_int8],
         input=np.ascontiguousarray(pcm, dtype="<i2").tobytes())
    shape = (len(pcm), *spec.shape)
    return (np.fromfile(out_float, dtype="<f4").reshape(shape),
            np.fromfile(out_int8, dtype=np.int8).reshape(shape))


class Fixture:
    spec: FeatureSpec
    model: bytes
    quant: dict
    generated: Path
    build: Path
    names: list[str]
    pcm: np.ndarray


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> Fixture:
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("needs gcc and make")
    root = tmp_path_factory.mktemp("firmware_core")
    spec = _base_spec()
    speech_names, speech = _speech(root, spec)
    raw = features.unnormalised(speech, spec).reshape(-1, spec.num_coefficients).astype(np.float64)
    spec = FeatureSpec(**{**spec.__dict__, "mean": tuple(float(v) for v in raw.mean(0)),
                          "std": tuple(float(v) for v in np.maximum(raw.std(0), 1e-6))})
    edge_names, edge = _edge_cases(spec, speech)
    f = Fixture()
    f.spec, f.names, f.pcm = spec, speech_names + edge_names, np.concatenate([speech, edge])
    f.model = _tiny_int8_model(spec, features.compute(f.pcm, spec))
    f.quant = _io_quantization(f.model)
    f.generated = _export_inputs(root, f.model, spec, {"tflm_arena_bytes": 16384, **f.quant})
    f.build = _build_host(f.generated, root / "build")
    return f


def _reference(fx: Fixture, pcm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = features.compute(pcm, fx.spec)
    return x, quantize_input(x, fx.quant["input_scale"], fx.quant["input_zero_point"])


def _worst_by_clip(names, c, py) -> list[tuple[float, str]]:
    worst = np.abs(c - py).reshape(len(names), -1).max(axis=1)
    return sorted(zip(worst.tolist(), names, strict=True), reverse=True)


# ---------------------------------------------------------------- frontend parity

def test_float_features_match_python_reference(fx):
    c, _ = _c_features(fx.build, fx.pcm, fx.spec)
    py, _ = _reference(fx, fx.pcm)
    worst = _worst_by_clip(fx.names, c, py)
    print(f"\nC vs keyspot.features.compute, largest |difference| (normalised units) over "
          f"{len(fx.names)} clips: {worst[0][0]:.3g} ({worst[0][1]})")
    for diff, name in worst:
        print(f"  {diff:.3g}  {name}")
    assert worst[0][0] < FLOAT_BOUND, worst[:3]


def test_pure_tone_within_float32_fft_round_off(fx):
    c, _ = _c_features(fx.build, _tone(fx.spec), fx.spec)
    py, _ = _reference(fx, _tone(fx.spec))
    diff = float(np.abs(c - py).max())
    print(f"\n440 Hz tone: largest |difference| {diff:.3g}")
    assert diff < TONE_BOUND


def test_int8_features_match_quantize_input(fx):
    _, c = _c_features(fx.build, fx.pcm, fx.spec)
    _, py = _reference(fx, fx.pcm)
    delta = np.abs(c.astype(np.int16) - py.astype(np.int16))
    agree = float((delta == 0).mean())
    print(f"\nint8 features equal on {agree:.4%} of {delta.size} values; largest difference {delta.max()}")
    assert agree >= 0.999
    assert delta.max() <= 1


def test_int8_model_predicts_the_same_label_from_both_feature_sources(fx):
    _, c = _c_features(fx.build, fx.pcm, fx.spec)
    _, py = _reference(fx, fx.pcm)
    c_labels = _predict(fx.model, c).argmax(1)
    py_labels = _predict(fx.model, py).argmax(1)
    assert c_labels.tolist() == py_labels.tolist()
    assert len(set(py_labels.tolist())) > 1, "a model that always says one label proves nothing"


def test_silence_sits_on_the_log_floor(fx):
    silence = np.zeros((1, fx.spec.clip_samples), np.int16)
    c, _ = _c_features(fx.build, silence, fx.spec)
    floor_db = np.float32(10 * np.log10(np.float32(fx.spec.log_floor)))
    expected = features.normalise(
        (np.full(fx.spec.mel_bins, floor_db) @ features.dct_matrix(fx.spec).T)[None].astype(np.float32),
        fx.spec)
    assert np.allclose(c[0], expected, atol=1e-5)


def test_log_mel_kind_matches_too(tmp_path, fx):
    """kind=log_mel skips the DCT: its own generated folder and build."""
    spec = FeatureSpec(**{**fx.spec.__dict__, "kind": "log_mel"})
    raw = features.unnormalised(fx.pcm[:8], spec).reshape(-1, spec.mel_bins).astype(np.float64)
    spec = FeatureSpec(**{**spec.__dict__, "mean": tuple(float(v) for v in raw.mean(0)),
                          "std": tuple(float(v) for v in np.maximum(raw.std(0), 1e-6))})
    model = _tiny_int8_model(spec, features.compute(fx.pcm, spec))
    quant = _io_quantization(model)
    build = _build_host(_export_inputs(tmp_path, model, spec, {"tflm_arena_bytes": 16384, **quant}),
                        tmp_path / "build")
    c, c8 = _c_features(build, fx.pcm, spec)
    py = features.compute(fx.pcm, spec)
    py8 = quantize_input(py, quant["input_scale"], quant["input_zero_point"])
    print(f"\nlog_mel: largest |difference| {np.abs(c - py).max():.3g}, "
          f"int8 equal on {(c8 == py8).mean():.4%}")
    assert np.abs(c - py).max() < FLOAT_BOUND
    assert (c8 == py8).mean() >= 0.999 and np.abs(c8.astype(int) - py8).max() <= 1


def test_export_refuses_fft_size_that_is_not_a_power_of_two(fx):
    bad = FeatureSpec(**{**fx.spec.__dict__, "fft_size": 500})
    with pytest.raises(ExportError, match="fft_size=500 must be a power of two"):
        generate(fx.model, bad, {"tflm_arena_bytes": 16384}, header_comment({}))


# ---------------------------------------------------------------- the pipeline's test split

GENERATED = Path("firmware/psoc6/source/generated")


def _split_parity(root: Path, generated: Path, build_dir: Path) -> dict:
    """Every test clip of the pipeline checkout at `root` (its manifest, spec.json
    and int8 model) through the C frontend built from `generated`: float
    features against keyspot.features.compute and against the features the
    stage stored, int8 features against quantize_input, and the int8 model's
    label from both feature sources."""
    spec = FeatureSpec.load(root / "data/features/spec.json")
    model = (root / "models/model_int8.tflite").read_bytes()
    quant = _io_quantization(model)
    with open(root / "data/raw/manifest.csv", newline="") as f:
        paths = [row["path"] for row in csv.DictReader(f) if row["split"] == "test"]
    assert paths, f"{root}: no test clips in the manifest"
    stored = np.load(root / "data/features/test.npz")
    assert [str(p) for p in stored["path"]] == paths, "test.npz does not hold every test clip, in order"
    pcm = np.stack([audio.load_clip(root / "data/raw" / p, spec.sample_rate, spec.clip_samples)
                    for p in paths])
    build = _build_host(generated, build_dir)
    c, c8 = _c_features(build, pcm, spec)
    py = features.compute(pcm, spec)
    py8 = quantize_input(py, quant["input_scale"], quant["input_zero_point"])
    c_out, py_out = _predict(model, c8), _predict(model, py8)
    c_labels, py_labels = c_out.argmax(1), py_out.argmax(1)
    delta = np.abs(c8.astype(np.int16) - py8.astype(np.int16))
    result = {"clips": len(paths), "shape": spec.shape, "float_diff": float(np.abs(c - py).max()),
              "stored_diff": float(np.abs(c - stored["x"]).max()),
              "int8_equal": float((delta == 0).mean()), "int8_max_delta": int(delta.max()),
              "same_label": float((c_labels == py_labels).mean())}
    worst = _worst_by_clip(paths, c, py)[0]
    print(f"\n{root}: {len(paths)} test clips, features {spec.shape}: largest |C - compute| "
          f"{result['float_diff']:.3g} ({worst[1]}), |C - test.npz| {result['stored_diff']:.3g}; "
          f"int8 equal on {result['int8_equal']:.4%} (largest difference {result['int8_max_delta']}); "
          f"same int8-model label on {result['same_label']:.2%}")
    assert result["float_diff"] < FLOAT_BOUND, worst
    assert result["stored_diff"] < FLOAT_BOUND
    assert result["int8_equal"] >= 0.999 and result["int8_max_delta"] <= 1
    # The C frontend's float sums round differently from numpy's, so an int8
    # feature may differ by one step (bounded above). On a clip the model finds
    # borderline, that can move its label: on the default model's 4,335 test
    # clips, one ("lift" by espeak-ng klatt6: _unknown_ from C's features,
    # "left" from Python's, 8 and 16 steps apart). At most 1 in 1,000 may move.
    mismatched = [(p, int(a), int(b), c_out[i].tolist(), py_out[i].tolist())
                  for i, (p, a, b) in enumerate(zip(paths, c_labels, py_labels, strict=True)) if a != b]
    assert result["same_label"] >= 0.999, (
        f"(clip, label from C features, label from Python features, both scores): {mismatched}")
    return result


@needs_gcc
@pytest.mark.slow
def test_pipeline_test_split_through_the_generated_firmware_folder(pipeline, tmp_path):
    """The smoke pipeline's own c-export output, compiled as it is, on every test clip."""
    root = pipeline["root"]
    _split_parity(root, root / GENERATED, tmp_path / "build")


REAL = [REPO / p for p in ("models/model_int8.tflite", "data/features/spec.json", "reports/quantize.json",
                           "data/features/test.npz", "data/raw/manifest.csv")]


@needs_gcc
@pytest.mark.skipif(not all(p.is_file() for p in REAL),
                    reason="needs this checkout's pipeline outputs (`make run`): " + ", ".join(
                        str(p.relative_to(REPO)) for p in REAL if not p.is_file()))
def test_this_checkouts_test_split_when_it_has_been_reproduced(tmp_path):
    """The same on this checkout's full-size outputs where `make run` made them
    (locally; CI has none): exported afresh, as the workspace may hold a
    generated folder from another run."""
    generated = tmp_path / "generated"
    export(*REAL[:3], generated)
    _split_parity(REPO, generated, tmp_path / "build")


# ---------------------------------------------------------------- a feature parameter changes

def _c_array_length(source: str, name: str) -> int:
    """Number of initialisers of the C array `name` in generated `source`."""
    body = source[source.index(f" {name}["):]
    body = body[body.index("{") + 1:body.index("};")]
    return len([v for v in body.split(",") if v.strip()])


@needs_gcc
@pytest.mark.slow
def test_feature_parameter_change_regenerates_the_tables_and_parity_holds(pipeline, tmp_path):
    """`dvc exp run -S features.num_mfcc=13` reruns features and all after it
    (not fetch), rewrites the generated folder for 13 coefficients, and the C
    frontend built from it still computes the new features."""
    from scratch_repo import run as scratch_run

    root, env = pipeline["root"], pipeline["env"]
    generated = root / GENERATED
    names = ("feature_config.h", "feature_config.c", "frontend_tables.c")
    before = {name: (generated / name).read_text() for name in names}
    old = FeatureSpec.load(root / "data/features/spec.json")
    assert old.num_mfcc != 13
    try:
        out = scratch_run(["dvc", "exp", "run", "-S", "experiment=smoke", "-S", "features.num_mfcc=13"],
                          root, env).stdout
        # A stage DVC restored from its run cache (an earlier identical run in the
        # same scratch repo) counts as rerun: its outputs changed all the same.
        ran = set(re.findall(r"Running stage '([^']+)'|Stage '([^']+)' is cached - skipping run", out))
        ran = {a or b for a, b in ran}
        assert "fetch" not in ran, out
        assert {"features", "train", "evaluate", "quantize", "c-export"} <= ran, out
        after = {name: (generated / name).read_text() for name in names}
        assert [name for name in names if after[name] == before[name]] == []
        assert re.search(r"#define KEYSPOT_NUM_MFCC +13\n", after["feature_config.h"])
        assert re.search(r"#define KEYSPOT_NUM_COEFFICIENTS +13\n", after["feature_config.h"])
        assert _c_array_length(before["frontend_tables.c"], "g_frontend_dct") == old.num_mfcc * old.mel_bins
        assert _c_array_length(after["frontend_tables.c"], "g_frontend_dct") == 13 * old.mel_bins
        assert _c_array_length(after["feature_config.c"], "g_feature_mean") == 13
        result = _split_parity(root, generated, tmp_path / "build")
        assert result["shape"] == (old.num_frames, 13)
    finally:
        # Back to the committed state, as test_pipeline.py's exp-run test leaves it.
        scratch_run(["git", "checkout", "--", "."], root, env)
        scratch_run(["dvc", "checkout", "-q"], root, env, check=False)
    assert scratch_run(["git", "status", "--porcelain"], root, env).stdout == ""
    assert {name: (generated / name).read_text() for name in names} == before
    assert FeatureSpec.load(root / "data/features/spec.json") == old


# ---------------------------------------------------------------- on the Cortex-M4F

@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="needs arm-none-eabi-gcc (with newlib) and qemu-system-arm "
                           "(scripts/setup.sh installs them)")
def test_cortex_m4_under_qemu_computes_the_host_features(fx, tmp_path):
    pick = [0, fx.names.index("silence"), fx.names.index("full-scale square"),
            fx.names.index("clipped speech")]
    pcm = fx.pcm[pick]
    write_test_clips(tmp_path / "clips", pcm, "tests/test_firmware_core.py")
    build = tmp_path / "build"
    _run(["make", "-s", "-C", CORE, f"GENERATED={fx.generated}", f"BUILD={build}",
          f"CLIPS={tmp_path / 'clips'}", "qemu"])
    result = subprocess.run(
        ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
         "-semihosting-config", "enable=on,target=native", "-kernel", str(build / "keyspot_qemu.elf")],
        capture_output=True, timeout=60)
    lines = result.stdout.decode("ascii", "replace").splitlines()
    assert result.returncode == 0 and lines and lines[-1] == "done", (
        result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    target8 = np.stack([np.frombuffer(bytes.fromhex(line.split()[3]), np.int8)
                        for line in lines if line.split()[2:3] == ["int8"]])
    target = np.stack([np.frombuffer(bytes.fromhex(line.split()[3]), ">u4").astype("<u4").view("<f4")
                       for line in lines if line.split()[2:3] == ["float"]])
    host, host8 = _c_features(fx.build, pcm, fx.spec)
    host, host8 = host.reshape(len(pcm), -1), host8.reshape(len(pcm), -1)
    identical = float((target.view("<u4") == host.view("<u4")).mean())
    print(f"\nQEMU mps2-an386: {len(pcm)} clips, int8 identical: {np.array_equal(target8, host8)}, "
          f"float32 bit-identical on {identical:.2%}, largest |difference| {np.abs(target - host).max():.3g}")
    assert np.array_equal(target8, host8)
    assert np.abs(target - host).max() < 1e-5


# ---------------------------------------------------------------- recognizer

# micro_speech's parameters, with the mask c-export writes for LABELS (_silence_ and _unknown_).
LABELS_RECOGNIZER = ["1000", "200", "1500", "3", "0x3"]


@pytest.fixture(scope="module")
def recognize(tmp_path_factory):
    program = build_keyspot_recognize(tmp_path_factory.mktemp("recognizer"))

    def run(results, num_labels=NUM_LABELS, params=LABELS_RECOGNIZER, check=True):
        """params: window_ms threshold suppression_ms minimum_count ignore_mask; [] for the
        program's own defaults."""
        text = "".join(f"{t} " + " ".join(str(int(s)) for s in scores) + "\n" for t, scores in results)
        args = [program, num_labels, *params]
        proc = subprocess.run([str(a) for a in args], input=text.encode(), capture_output=True)
        if check:
            assert proc.returncode == 0, proc.stderr.decode()
            return [tuple(int(v) for v in line.split()) for line in proc.stdout.decode().splitlines()]
        return proc

    return run


def _scores(label: int, level: int = 127, rest: int = -128, num_labels: int = NUM_LABELS):
    """int8 scores: `label` at `level`, the others at `rest`."""
    return [level if i == label else rest for i in range(num_labels)]


def _stream(segments, step_ms=100):
    """[(duration_ms, scores)] -> [(time_ms, scores)] every step_ms."""
    out, t = [], 0
    for duration, scores in segments:
        for _ in range(duration // step_ms):
            out.append((t, scores))
            t += step_ms
    return out


def test_recognizer_detects_a_keyword_once(recognize):
    # The model scores a keyword high while it is anywhere in its 1 s input.
    results = _stream([(1000, _scores(0)), (1000, _scores(2)), (2000, _scores(0))])
    detections = recognize(results)
    assert len(detections) == 1
    t, label, score = detections[0]
    assert label == 2 and 1000 <= t < 2300 and score > 200


def test_recognizer_suppresses_repeats_inside_suppression(recognize):
    held = recognize(_stream([(500, _scores(0)), (4000, _scores(3))]))
    times = [t for t, _, _ in held]
    assert [label for _, label, _ in held] == [3] * len(held) and len(held) >= 2
    assert all(b - a > 1500 for a, b in zip(times, times[1:], strict=False))
    # A short averaging window makes each word detectable within 300 ms. A
    # second word 300 ms after the first, inside suppression_ms: not reported,
    # whatever its label; the same words 2 s apart: both.
    sharp = ["300", "200", "1500", "3", "3"]
    two = recognize(_stream([(1000, _scores(0)), (500, _scores(2)), (300, _scores(0)),
                             (500, _scores(4)), (2000, _scores(0))]), params=sharp)
    assert [label for _, label, _ in two] == [2]
    apart = recognize(_stream([(1000, _scores(0)), (500, _scores(2)), (2000, _scores(0)),
                               (500, _scores(4)), (2000, _scores(0))]), params=sharp)
    assert [label for _, label, _ in apart] == [2, 4]


def test_recognizer_threshold_is_strict(recognize):
    # Averaged score 200 of 255 (int8 72) is not above the default threshold; 201 is.
    assert recognize(_stream([(2000, _scores(2, level=72))])) == []
    assert [label for _, label, _ in recognize(_stream([(1500, _scores(2, level=73))]))] == [2]
    params = ["1000", "150", "1500", "3", "3"]
    assert [label for _, label, _ in recognize(_stream([(1500, _scores(2, level=30))]), params=params)] == [2]


def test_recognizer_needs_minimum_count_in_window(recognize):
    sparse = _stream([(6000, _scores(2))], step_ms=600)  # at most 2 results per 1000 ms
    assert recognize(sparse) == []
    assert recognize(sparse, params=["1000", "200", "1500", "2", "3"])[0][1] == 2


def test_recognizer_ignores_exactly_the_labels_of_its_mask(recognize):
    # Built without a generated folder, with no parameters: no label is ignored by its position.
    assert [label for _, label, _ in recognize(_stream([(1500, _scores(0))]), params=[])] == [0]
    assert recognize(_stream([(1500, _scores(0)), (1500, _scores(1))])) == []
    only_unknown_ignored = ["1000", "200", "1500", "3", "0x2"]
    assert [label for _, label, _ in recognize(_stream([(1500, _scores(0))]),
                                               params=only_unknown_ignored)] == [0]
    assert recognize(_stream([(1500, _scores(1))]), params=only_unknown_ignored) == []


def test_recognizer_rejects_time_going_backwards(recognize):
    proc = recognize([(100, _scores(0)), (50, _scores(0))], check=False)
    assert proc.returncode == 1 and b"line 2" in proc.stderr


# ---------------------------------------------------------------- keywords in a stream
#
# A model that really tells "yes" from "no": trained here on espeak-ng words
# of ten voices, each placed anywhere in the 1 s input with at least 40% of
# it inside, mixed with noise, against silence (zeros and noise) and other
# words (_unknown_). The stream is spoken by an eleventh voice.

KEYWORD_LABELS = ("_silence_", "_unknown_", "yes", "no")
KEYWORD_WORDS = ("yes", "no", "up", "go", "left", "stop")
TRAIN_VOICES = ("en-us+m1", "en+m3", "en-gb+f2", "en-029+m2", "en-us+f4", "en-gb-scotland+m4",
                "en+f5", "en-us+m7", "en-gb-x-rp+m2", "en+f1")
STREAM_VOICE = "en-us+f3"
STREAM_HOP_MS = 100
# micro_speech's threshold, suppression, minimum count and ignored labels
# (_silence_, _unknown_), averaged over 500 ms instead of 1000: a 0.4 s word
# fills a 1 s input for well under a second.
STREAM_RECOGNIZER = {"average_window_ms": 500, "detection_threshold": 200, "suppression_ms": 1500,
                     "minimum_count": 3, "ignore_mask": 0b11}


def _espeak_word(folder: Path, text: str, voice: str, speed: int, sample_rate: int) -> np.ndarray:
    """A spoken word at `sample_rate`, float in [-1, 1), trimmed to where it is audible."""
    wav = folder / f"{text}_{voice}_{speed}.wav"
    espeak_wav(wav, text, voice, speed)
    samples, rate = audio.decode(wav)
    x = audio.resample(audio.to_mono(samples), rate, sample_rate)
    loud = np.flatnonzero(np.abs(x) > 0.02 * np.abs(x).max())
    return x[loud[0]:loud[-1] + 1]


def _keyword_training_set(folder: Path, spec: FeatureSpec, rng) -> tuple[np.ndarray, np.ndarray]:
    """Words that are labels are their class, the others _unknown_; noise is
    _silence_ where the labels have it, else _unknown_."""
    n = spec.clip_samples
    unknown = spec.labels.index("_unknown_")
    silence = spec.labels.index("_silence_") if "_silence_" in spec.labels else unknown
    words = [(spec.labels.index(word) if word in spec.labels else unknown,
              _espeak_word(folder, word, voice, speed, spec.sample_rate))
             for word in KEYWORD_WORDS for voice in TRAIN_VOICES for speed in (150, 190)]

    def noise():
        level = rng.choice([0.0, rng.uniform(1, 300)])
        return rng.standard_normal(n) * level / 32768

    pcm, y = [], []
    for _ in range(8):
        for label, word in words:
            length = len(word)
            start = int(rng.integers(-int(0.6 * length), n - int(0.4 * length) + 1))
            clip, a, b = noise(), max(start, 0), min(start + length, n)
            clip[a:b] += word[a - start:b - start] * rng.uniform(0.3, 1.0)
            pcm.append(audio.to_int16(clip))
            y.append(label)
    for _ in range(len(pcm) // 4):
        pcm.append(audio.to_int16(noise()))
        y.append(silence)
    return np.stack(pcm), np.array(y)


def _train_keyword_model(folder: Path, spec: FeatureSpec, x: np.ndarray, y: np.ndarray, rng) -> bytes:
    """A small conv net, trained for a few seconds, as int8 by keyspot.quantize.convert.
    Max pooling over the whole input makes it indifferent to where the word is."""
    import keras
    from keras import layers

    from keyspot.keras_files import export_saved_model
    from keyspot.quantize import convert
    from keyspot.train import class_weights

    keras.utils.set_random_seed(0)
    inputs = keras.Input((*spec.shape, 1))
    h = layers.Conv2D(8, (5, 3), strides=2, padding="same", activation="relu")(inputs)
    h = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(h)
    outputs = layers.Dense(len(spec.labels), activation="softmax")(layers.GlobalMaxPooling2D()(h))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x[..., None], y, epochs=15, batch_size=32, verbose=0,
              class_weight=class_weights(y, len(spec.labels)))
    export_saved_model(model, folder / "saved_model")
    return convert(folder / "saved_model", x[rng.choice(len(x), 100, replace=False)][..., None])


class KeywordFixture:
    spec: FeatureSpec
    model: bytes
    build: Path
    stream: np.ndarray
    words: list[tuple[str, int, int]]   # (word, first ms, last ms) in the stream


def _keyword_fixture(root: Path, labels: tuple[str, ...], recognizer=None) -> KeywordFixture:
    """A keyword model for `labels`, exported (with `recognizer` as
    export.recognizer) and built for the host, and a stream to run it on."""
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("needs gcc and make")
    rng = np.random.default_rng(0)
    spec = _base_spec(labels=labels)
    pcm, y = _keyword_training_set(root, spec, rng)
    raw = features.unnormalised(pcm, spec)
    flat = raw.reshape(-1, spec.num_coefficients).astype(np.float64)
    spec = FeatureSpec(**{**spec.__dict__, "mean": tuple(float(v) for v in flat.mean(0)),
                          "std": tuple(float(v) for v in np.maximum(flat.std(0), 1e-6))})
    k = KeywordFixture()
    k.spec = spec
    k.model = _train_keyword_model(root, spec, features.normalise(raw, spec), y, rng)
    quant = _io_quantization(k.model)
    k.build = _build_host(_export_inputs(root, k.model, spec, {"tflm_arena_bytes": 16384, **quant},
                                         recognizer), root / "build")

    # silence, "yes", 1.5 s silence, "no", 1.5 s silence, "yes", silence; quiet noise throughout.
    sr = spec.sample_rate
    spoken = {word: _espeak_word(root, word, STREAM_VOICE, 175, sr) for word in ("yes", "no")}
    parts, k.words, at = [], [], 0
    for word, pause in ((None, 1.2), ("yes", 1.5), ("no", 1.5), ("yes", 1.5)):
        if word:
            parts.append(spoken[word])
            k.words.append((word, at * 1000 // sr, (at + len(spoken[word]) - 1) * 1000 // sr))
            at += len(spoken[word])
        parts.append(np.zeros(round(pause * sr)))
        at += round(pause * sr)
    noise = np.random.default_rng(1).standard_normal(at) * 30 / 32768
    k.stream = audio.to_int16(np.concatenate(parts) + noise)
    return k


@pytest.fixture(scope="module")
def keywords(tmp_path_factory) -> KeywordFixture:
    return _keyword_fixture(tmp_path_factory.mktemp("keywords"), KEYWORD_LABELS)


def _stream_scores(k: KeywordFixture) -> tuple[np.ndarray, np.ndarray]:
    """A 1 s window every STREAM_HOP_MS through the C frontend and the int8 model:
    (end time of each window in ms, int8 scores)."""
    n, hop = k.spec.clip_samples, k.spec.sample_rate * STREAM_HOP_MS // 1000
    starts = np.arange(0, len(k.stream) - n + 1, hop)
    _, c8 = _c_features(k.build, np.stack([k.stream[a:a + n] for a in starts]), k.spec)
    return (starts + n) * 1000 // k.spec.sample_rate, _predict(k.model, c8)


def _recognize_stream(k: KeywordFixture, times, scores, **changes) -> list[tuple[int, int, int]]:
    p = {**STREAM_RECOGNIZER, **changes}
    text = "".join(f"{t} " + " ".join(str(int(s)) for s in row) + "\n" for t, row in zip(times, scores, strict=True))
    args = [k.build / "keyspot_recognize", len(k.spec.labels), p["average_window_ms"], p["detection_threshold"],
            p["suppression_ms"], p["minimum_count"], hex(p["ignore_mask"])]
    out = _run(args, input=text.encode()).stdout.decode()
    return [tuple(int(v) for v in line.split()) for line in out.splitlines()]


def _averaged(times, scores, window_ms: int) -> np.ndarray:
    """What the recognizer averages: scores + 128 of the results at most window_ms old, floor mean."""
    shifted = scores.astype(np.int64) + 128
    return np.stack([shifted[(times <= t) & (times >= t - window_ms)].sum(0)
                     // ((times <= t) & (times >= t - window_ms)).sum() for t in times])


def test_recognizer_finds_yes_no_yes_in_a_stream_of_an_unseen_voice(keywords):
    k = keywords
    times, scores = _stream_scores(k)
    detections = _recognize_stream(k, times, scores)
    averaged = _averaged(times, scores, STREAM_RECOGNIZER["average_window_ms"])
    peaks = [int(averaged[(times > first) & (times <= last + 1000), k.spec.labels.index(word)].max())
             for word, first, last in k.words]
    print(f"\nstream of {len(k.stream) / k.spec.sample_rate:.1f} s ({STREAM_VOICE}), words (ms) {k.words}; "
          f"detections (ms, label, score of 255): {detections}; peak averaged score of each word {peaks}")
    assert [k.spec.labels[label] for _, label, _ in detections] == [word for word, _, _ in k.words]
    for (t, _, _), (word, first, last) in zip(detections, k.words, strict=True):
        # Inside the word's span: the 1 s window that ends at t holds some of it.
        assert first < t <= last + 1000, (word, first, last, t)
    # The recognizer averages as the Python reading of it does.
    for t, label, score in detections:
        assert averaged[list(times).index(t), label] == score


def test_recognizer_stays_silent_with_the_threshold_above_every_averaged_score(keywords):
    k = keywords
    times, scores = _stream_scores(k)
    averaged = _averaged(times, scores, STREAM_RECOGNIZER["average_window_ms"])
    keywords_only = averaged[STREAM_RECOGNIZER["minimum_count"] - 1:, 2:]
    highest = int(keywords_only.max())
    print(f"\nhighest averaged keyword score {highest} of 255")
    assert _recognize_stream(k, times, scores, detection_threshold=highest) == []
    assert len(_recognize_stream(k, times, scores, detection_threshold=highest - 1)) >= 1


def test_keyspot_listen_hears_the_stream_as_the_c_chain_does(keywords):
    """keyspot.listen (Python frontend, LiteRT int8 model, Python recognizer,
    the board's framing) finds the same words at about the same times as
    the C frontend and recognizer."""
    from keyspot.listen import Listener, TFLiteModel
    from keyspot.recognizer import RecognizerParams

    k = keywords
    c_detections = _recognize_stream(k, *_stream_scores(k))
    listener = Listener(k.spec, TFLiteModel.load(k.model, k.spec), RecognizerParams(**STREAM_RECOGNIZER))
    heard = listener.feed(k.stream)
    print(f"\nkeyspot listen: {[(d.time_ms, d.label, d.score) for d in heard]}; C chain: {c_detections}")
    assert [d.label for d in heard] == [word for word, _, _ in k.words]
    for d, (t, _, _) in zip(heard, c_detections, strict=True):
        # The C test windows start every 100 ms from 0; the board's end on a frame: 20 ms apart at most.
        assert abs(d.time_ms - t) <= 120


# ---------------------------------------------------------------- labels by name, not position

def test_recognizer_config_finds_silence_and_unknown_by_name():
    from keyspot.export.c_model import DEFAULT_RECOGNIZER, recognizer_config_h

    def config(labels):
        text = recognizer_config_h("", labels, DEFAULT_RECOGNIZER)
        return {k: v for k, v in re.findall(r"#define KEYSPOT_(\w+) (\S+)", text)}

    assert config(("_silence_", "_unknown_", "yes"))["RECOGNIZER_IGNORE_MASK"] == "0x3ull"
    folder = config(("_unknown_", "yes", "no"))
    assert (folder["SILENCE_INDEX"], folder["UNKNOWN_INDEX"], folder["RECOGNIZER_IGNORE_MASK"]) == \
        ("-1", "0", "0x1ull")
    late = config(("yes", "no", "_unknown_", "_silence_"))
    assert (late["SILENCE_INDEX"], late["UNKNOWN_INDEX"], late["RECOGNIZER_IGNORE_MASK"]) == ("3", "2", "0xcull")
    assert config(("yes", "no"))["RECOGNIZER_IGNORE_MASK"] == "0x0ull"
    assert config(("yes",))["RECOGNIZER_DETECTION_THRESHOLD"] == str(DEFAULT_RECOGNIZER.detection_threshold)


def test_export_refuses_more_labels_than_the_recognizer_supports(fx):
    from keyspot.export.c_model import RECOGNIZER_MAX_LABELS

    header = (CORE / "recognizer.h").read_text()
    assert f"#define KEYSPOT_RECOGNIZER_MAX_LABELS {RECOGNIZER_MAX_LABELS} " in header
    labels = tuple(f"word{i}" for i in range(RECOGNIZER_MAX_LABELS + 1))
    spec = FeatureSpec(**{**fx.spec.__dict__, "labels": labels})
    model = _tiny_int8_model(spec, features.compute(fx.pcm[:4], fx.spec))
    with pytest.raises(ExportError) as err:
        generate(model, spec, {"tflm_arena_bytes": 16384}, header_comment({}), {"spec": "spec.json"})
    assert str(err.value) == (f"spec.json: {RECOGNIZER_MAX_LABELS + 1} labels, but the firmware's recognizer "
                              f"supports at most {RECOGNIZER_MAX_LABELS} (KEYSPOT_RECOGNIZER_MAX_LABELS)")
    # At the limit, the generated recognizer takes it.
    at_limit = FeatureSpec(**{**spec.__dict__, "labels": labels[:-1]})
    model = _tiny_int8_model(at_limit, features.compute(fx.pcm[:4], fx.spec))
    assert "recognizer_config.h" in generate(model, at_limit, {"tflm_arena_bytes": 16384}, header_comment({}))


def _folder_labels(root: Path) -> tuple[str, ...]:
    """The labels the folder source gives a tree of yes/, no/ and other words."""
    from keyspot.compose import compose
    from keyspot.data import folder
    from keyspot.params import from_dict

    for word in ("yes", "no", "up", "stop"):
        (root / word).mkdir(parents=True)
        espeak_wav(root / word / "a.wav", word)
    params = from_dict(compose(REPO / "conf", ["dataset=folder", f"dataset.root={root}",
                                               "dataset.keywords=[yes,no]"]))
    files, _ = folder.list_files(root)
    return tuple(folder.plan(params.dataset, root, files)[1])


def test_a_folder_datasets_first_keyword_is_heard_in_a_stream(tmp_path_factory):
    """The folder source puts _unknown_ first and has no _silence_: the C
    recognizer, built with the generated recognizer_config.h and given no
    parameters, reports "yes" (label 1) and "no", and never _unknown_."""
    from keyspot.schema import Recognizer

    root = tmp_path_factory.mktemp("folder_keywords")
    labels = _folder_labels(root / "audio")
    assert labels == ("_unknown_", "yes", "no")
    k = _keyword_fixture(root, labels, Recognizer(average_window_ms=500, detection_threshold=200,
                                                  suppression_ms=1500, minimum_count=3))
    assert "#define KEYSPOT_RECOGNIZER_IGNORE_MASK 0x1ull" in (root / "generated/recognizer_config.h").read_text()
    times, scores = _stream_scores(k)
    text = "".join(f"{t} " + " ".join(str(int(v)) for v in row) + "\n" for t, row in zip(times, scores, strict=True))
    out = _run([k.build / "keyspot_recognize", len(labels)], input=text.encode()).stdout.decode()
    detections = [tuple(int(v) for v in line.split()) for line in out.splitlines()]
    print(f"\nfolder labels {labels}; words (ms) {k.words}; detections (ms, label, score) {detections}")
    assert [labels[label] for _, label, _ in detections] == [word for word, _, _ in k.words]
    assert detections[0][1] == 1
