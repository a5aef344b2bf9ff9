"""keyspot's C engine (export.engine=c) gives TFLite's reference kernels' bytes.

Every model config (conf/model/*.yaml at a small width, with
calibrated random weights: BatchNorm scales drawn at random so the folded
per-channel scales differ), plus a model that uses the kernel options the
model configs do not (strides, dilation, VALID padding, a depth multiplier,
RELU6, padded pooling, odd channel counts, windows not a multiple of four,
1x1 convolutions run in place and not, two dense layers), plus a model
config exported with the exact form of requantisation everywhere, is
converted by keyspot.quantize.convert, exported with engine=c, and run on
test-split-like clips and saturating inputs: every layer's output, not only
the scores, must equal the interpreter's (OpResolverType.BUILTIN_REF) byte
for byte, from the portable C built for the host, from the DSP kernels
cross-built for a Cortex-M4F under QEMU, and from the portable C on a
Cortex-M3 under QEMU. The chain, PCM -> frontend -> engine -> label, on the
Cortex-M4F prints what the host build prints. The smoke pipeline's model runs
on its whole test split on the host and on the Cortex-M4F, and this
checkout's trained model on its, where `make run` left one.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from unittest import mock

import flatbuffers
import numpy as np
import pytest
import yaml
from board_helpers import calibrate_random_weights, instructions_per_inference, write_test_clips

from keyspot import features
from keyspot.compose import compose
from keyspot.export import ExportError, c_engine_kernels, export, generate
from keyspot.export.c_engine import in_place, plan
from keyspot.export.c_engine_graph import read
from keyspot.export.c_model import header_comment
from keyspot.export.tflite_model import schema
from keyspot.features import FeatureSpec, spec_from_params
from keyspot.params import from_dict
from keyspot.quantize import io_quantization
from keyspot.tflite_runner import quantize_input, reference_interpreter

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning"),
    pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning"),
    pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                       reason="needs host gcc and make"),
]

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "firmware/core"
MODEL_CONFIGS = sorted(p.stem for p in (REPO / "conf/model").glob("*.yaml"))
# The model config exported with the exact form of requantisation on every layer.
EXACT_FORM_MODEL = "ds_cnn_s"
CASES = [*MODEL_CONFIGS, "coverage", "exact_form"]
LABELS = ("_silence_", "_unknown_", "yes", "no", "up", "down")
needs_qemu = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs arm-none-eabi-gcc (with newlib) and qemu-system-arm (scripts/setup.sh installs them)")


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, **kwargs)
    assert result.returncode == 0, (result.stdout[-3000:] + result.stderr[-3000:]).decode("utf-8", "replace")
    return result


# ---------------------------------------------------------------- inputs

def _composed(name: str) -> dict:
    return compose(REPO / "conf", [f"model={name}"])


def _spec(pcm: np.ndarray) -> FeatureSpec:
    """The configured feature spec, with statistics measured on `pcm`."""
    params = from_dict(_composed(MODEL_CONFIGS[0]))
    spec = spec_from_params(params.features, params.dataset.sample_rate, params.dataset.clip_seconds,
                            list(LABELS))
    raw = features.unnormalised(pcm, spec).reshape(-1, spec.num_coefficients).astype(np.float64)
    return FeatureSpec(**{**spec.__dict__, "mean": tuple(float(v) for v in raw.mean(0)),
                          "std": tuple(float(v) for v in np.maximum(raw.std(0), 1e-6))})


def _test_like_clips(samples: int, rate: int) -> np.ndarray:
    """Voiced sounds, a fricative, silence, noise, a tone, a chirp, clicks and a
    clipped vowel: what a keyword test split holds, without a dataset."""
    rng = np.random.default_rng(0)
    t = np.arange(samples) / rate
    envelope = np.clip(np.sin(np.pi * (t - 0.2) / 0.5), 0, None) * ((t > 0.2) & (t < 0.7))

    def vowel(f0, formants, gain):
        f = f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
        phase = 2 * np.pi * np.cumsum(f) / rate
        x = sum(np.sin(k * phase) * sum(np.exp(-((k * f0 - fm) / 150) ** 2) for fm in formants)
                for k in range(1, 30))
        return gain * envelope * x / np.abs(x).max()

    noise = rng.standard_normal(samples)
    clips = [
        vowel(120, (700, 1200), 12000) + 30 * noise,
        vowel(220, (300, 2300), 8000) + 30 * noise,
        vowel(160, (500, 1500), 20000),
        np.diff(noise, prepend=0) * envelope * 4000,
        np.zeros(samples),
        rng.integers(-2, 3, samples),
        rng.integers(-32768, 32768, samples),
        10000 * np.sin(2 * np.pi * 1000 * t),
        8000 * np.sin(2 * np.pi * (100 + 2000 * t) * t),
        np.where(np.arange(samples) % 4000 == 0, 32767, 0),
        np.clip(vowel(140, (600, 1000), 90000), -32768, 32767),
    ]
    return np.stack([np.clip(np.round(c), -32768, 32767).astype(np.int16) for c in clips])


@pytest.fixture(scope="module")
def clips():
    params = from_dict(_composed(MODEL_CONFIGS[0]))
    samples = round(params.dataset.sample_rate * params.dataset.clip_seconds)
    pcm = _test_like_clips(samples, params.dataset.sample_rate)
    spec = _spec(pcm)
    return spec, pcm, features.compute(pcm, spec)


def _int8_inputs(x: np.ndarray, model: bytes) -> np.ndarray:
    """The clips' features quantised as the model's input, then inputs at the
    ends of the int8 range and uniform noise, which saturate every layer."""
    q = io_quantization(model)
    x8 = quantize_input(x, q["input_scale"], q["input_zero_point"])
    rng = np.random.default_rng(1)
    extremes = np.stack([np.full(x8.shape[1:], v, np.int8) for v in (-128, 127, q["input_zero_point"])])
    noise = rng.integers(-128, 128, size=(6, *x8.shape[1:])).astype(np.int8)
    return np.concatenate([x8, extremes, noise])


# ---------------------------------------------------------------- models

def _small_model_params(name: str):
    """conf/model/<name>.yaml at a small width: a bit-exactness test needs the
    kernels and their options, not the size."""
    data = _composed(name)
    model = data["model"]
    if "filters" in model:
        model["filters"] = min(model["filters"], 8)
    if "blocks" in model:
        model["blocks"] = min(model["blocks"], 2)
    return from_dict(data).model


def _coverage_model(shape: tuple[int, int], num_labels: int):
    """The kernel options no model config uses (dilation: see _dilate)."""
    import keras
    from keras import layers

    inputs = keras.Input((*shape, 1))
    x = layers.Conv2D(6, (3, 3), strides=(2, 1), padding="valid", activation="relu")(inputs)
    x = layers.Conv2D(6, (3, 2), padding="same")(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu6")(x)
    # The 3x3 stride-1 depthwise kernel with a clamping activation and VALID
    # padding, then 1x1 convolutions: 12 -> 5 channels in place (an odd
    # count), 5 -> 7 from a gathered window of 5 values (padded to 8).
    x = layers.DepthwiseConv2D(3, padding="valid", activation="relu6")(x)
    x = layers.Conv2D(5, 1, activation="relu")(x)
    x = layers.Conv2D(7, 1)(x)
    x = layers.AveragePooling2D(3, strides=2, padding="same")(x)
    x = layers.MaxPooling2D((3, 2), strides=(2, 1), padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    outputs = layers.Dense(num_labels, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def _int8_model(name: str, spec: FeatureSpec, calibration: np.ndarray, folder: Path) -> bytes:
    import keras

    from keyspot import models
    from keyspot.keras_files import export_saved_model
    from keyspot.quantize import convert

    keras.utils.set_random_seed(0)
    if name == "coverage":
        model = _coverage_model(spec.shape, len(spec.labels))
    else:
        model = models.build(_small_model_params(EXACT_FORM_MODEL if name == "exact_form" else name),
                             spec.shape, len(spec.labels))
    calibrate_random_weights(model, calibration, np.random.default_rng(2))
    export_saved_model(model, folder / "saved_model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        int8 = convert(folder / "saved_model", calibration[..., None])
    return _dilate(int8) if name == "coverage" else int8


def _dilate(model: bytes) -> bytes:
    """The second CONV_2D dilated 2x2 in the flatbuffer. The converter turns a
    dilated Keras convolution into SPACE_TO_BATCH_ND around a plain one, so a
    dilated CONV_2D only comes from other tools; with SAME padding and stride 1
    its output shape stays, and the interpreter runs it dilated."""
    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    convs = [op for op in m.subgraphs[0].operators
             if m.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.CONV_2D]
    convs[1].builtinOptions.dilationHFactor = convs[1].builtinOptions.dilationWFactor = 2
    builder = flatbuffers.Builder(len(model))
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class Case:
    """One model exported with engine=c and built for the host."""
    name: str
    model: bytes
    spec: FeatureSpec
    generated: Path
    build: Path
    inputs: np.ndarray


def _export_engine(root: Path, model: bytes, spec: FeatureSpec, out: str = "generated",
                   exact_form: bool = False) -> Path:
    (root / "model_int8.tflite").write_bytes(model)
    spec.save(root / "spec.json")
    (root / "quantize.json").write_text(json.dumps({"tflm_arena_bytes": 65536, **io_quantization(model)}))
    # exact_form: no layer may take the short form of requantisation.
    with mock.patch.object(c_engine_kernels, "SHORT_FORM_LIMIT", 0 if exact_form else
                           c_engine_kernels.SHORT_FORM_LIMIT):
        export(root / "model_int8.tflite", root / "spec.json", root / "quantize.json", root / out, engine="c")
    return root / out


@pytest.fixture(scope="module")
def case_factory(tmp_path_factory, clips):
    spec, _, x = clips
    made: dict[str, Case] = {}

    def make(name: str) -> Case:
        if name not in made:
            root = tmp_path_factory.mktemp(f"engine_{name}")
            c = Case()
            c.name, c.spec = name, spec
            c.model = _int8_model(name, spec, x, root)
            c.generated = _export_engine(root, c.model, spec, exact_form=name == "exact_form")
            c.build = root / "build"
            _run(["make", "-s", "-C", CORE, f"GENERATED={c.generated}", f"BUILD={c.build}", "host"])
            c.inputs = _int8_inputs(x, c.model)
            made[name] = c
        return made[name]

    return make


# ---------------------------------------------------------------- host parity

def _c_engine(build: Path, inputs: np.ndarray, num_labels: int):
    """(outputs, {(op, tensor): [per input, the layer's int8 output]}) of the host build."""
    trace_path = build / "trace.bin"
    out = _run([build / "keyspot_engine", "-", "-", trace_path], input=inputs.tobytes()).stdout
    return _outputs_and_trace(out, trace_path, len(inputs), num_labels)


# The same program cross-built: the Cortex-M4F's DSP kernels, or the portable C
# on a Cortex-M3 (mps2-an385: no DSP extension, no FPU).
TARGETS = {"cortex-m4f": ("mps2-an386", "-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard"),
           "cortex-m3": ("mps2-an385", "-mcpu=cortex-m3 -mthumb -mfloat-abi=soft")}


def _c_engine_qemu(generated: Path, build: Path, inputs: np.ndarray, num_labels: int,
                   target: str = "cortex-m4f", trace: bool = True):
    """_c_engine of host/keyspot_engine built for `target` and run under QEMU,
    the files read and written through semihosting (the layers only with
    `trace`)."""
    machine, flags = TARGETS[target]
    _run(["make", "-s", "-C", CORE, f"GENERATED={generated}", f"BUILD={build}", f"ARM_FLAGS={flags}",
          "qemu-engine"])
    paths = [build / name for name in ("inputs.bin", "outputs.bin", "trace.bin")][:3 if trace else 2]
    paths[0].write_bytes(inputs.tobytes())
    args = ",".join(f"arg={a}" for a in ["keyspot_engine", *paths])
    _run(["qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none",
          "-semihosting-config", f"enable=on,target=native,{args}", "-kernel", build / "keyspot_engine_qemu.elf"],
         timeout=600)
    return _outputs_and_trace(paths[1].read_bytes(), paths[2] if trace else None, len(inputs), num_labels)


def _outputs_and_trace(out: bytes, trace_path: Path | None, count: int, num_labels: int):
    trace, pos, layers = trace_path.read_bytes() if trace_path else b"", 0, {}
    while pos < len(trace):
        op, tensor, size = (int(v) for v in np.frombuffer(trace[pos:pos + 12], "<i4"))
        layers.setdefault((op, tensor), []).append(np.frombuffer(trace[pos + 12:pos + 12 + size], np.int8))
        pos += 12 + size
    return np.frombuffer(out, np.int8).reshape(count, num_labels), layers


def _tflite_reference(model: bytes, inputs: np.ndarray, tensors) -> tuple[np.ndarray, dict]:
    """keyspot.quantize's interpreter (BUILTIN_REF) for the outputs; a second
    one that keeps every tensor for the layers."""
    import tensorflow as tf

    interpreter = reference_interpreter(model)
    keep = tf.lite.Interpreter(model_content=model, experimental_preserve_all_tensors=True,
                               experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    keep.allocate_tensors()
    outputs, layers = [], {key: [] for key in tensors}
    for it in (interpreter, keep):
        detail = it.get_input_details()[0]
        for example in inputs:
            it.set_tensor(detail["index"], example.reshape(detail["shape"]))
            it.invoke()
            if it is interpreter:
                outputs.append(it.get_tensor(it.get_output_details()[0]["index"]).reshape(-1).copy())
            else:
                for key in tensors:
                    layers[key].append(it.get_tensor(key[1]).reshape(-1).copy())
    return np.stack(outputs), layers


def _differences(model: bytes, c_layers: dict, tf_layers: dict) -> list[str]:
    names = {layer.index: layer.op for layer in read(model).layers}
    out = []
    for (op, tensor), c_values in c_layers.items():
        c, ref = np.stack(c_values), np.stack(tf_layers[(op, tensor)])
        if not np.array_equal(c, ref):
            bad = np.argwhere(c != ref)[0]
            out.append(f"operator {op} ({names[op]}): {int((c != ref).any(1).sum())} of {len(c)} inputs "
                       f"differ; first input {bad[0]} value {bad[1]}: C {c[tuple(bad)]}, "
                       f"TFLite {ref[tuple(bad)]}")
    return out


@pytest.mark.parametrize("name", CASES)
def test_every_layer_equals_the_tflite_reference_interpreter(case_factory, name):
    c = case_factory(name)
    outputs, c_layers = _c_engine(c.build, c.inputs, len(c.spec.labels))
    reference, tf_layers = _tflite_reference(c.model, c.inputs, list(c_layers))
    ops = [layer.op for layer in read(c.model).layers]
    print(f"\n{name}: {len(c.inputs)} inputs through {len(ops)} layers ({', '.join(ops)}); "
          f"distinct top labels {len(set(reference.argmax(1).tolist()))}")
    assert len(c_layers) == len(ops)
    assert _differences(c.model, c_layers, tf_layers) == []
    assert np.array_equal(outputs, reference)
    assert len(set(reference.argmax(1).tolist())) > 1, "every input gave the same label: proves little"


@needs_qemu
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", CASES)
def test_every_layer_on_the_target_equals_the_tflite_reference_interpreter(case_factory, tmp_path, name,
                                                                            target):
    """The Cortex-M4F runs the DSP kernels (inline SMLAD, SMMULR, ...), the
    Cortex-M3 the portable C: both give the reference's bytes at every layer."""
    c = case_factory(name)
    outputs, c_layers = _c_engine_qemu(c.generated, tmp_path / "build", c.inputs, len(c.spec.labels), target)
    reference, tf_layers = _tflite_reference(c.model, c.inputs, list(c_layers))
    assert len(c_layers) == len(read(c.model).layers)
    assert _differences(c.model, c_layers, tf_layers) == []
    assert np.array_equal(outputs, reference)


def test_each_convolution_says_its_kernel_form_and_why(case_factory):
    coverage = (case_factory("coverage").generated / "engine_model.c").read_text()
    forms = [line for line in coverage.splitlines() if line.startswith("/* kernel:")]
    assert len(forms) == 6, forms
    assert "int16 windows of 9 values, padded to 12" in forms[0]
    assert "int16 windows of 5 values, padded to 8" in forms[5]
    assert "any shape, taps read in place" in forms[2] and "3x3 stride 1" in forms[3]
    assert all("requantisation: short form (every shift negative, |accumulator| <= " in f for f in forms)
    exact = (case_factory("exact_form").generated / "engine_model.c").read_text()
    assert "_channel_scale[" not in exact and "_multiplier[" in exact
    assert exact.count("requantisation: exact form (|accumulator| may reach ") == exact.count("/* kernel:") > 0


def test_depthwise_and_pointwise_layers_run_in_place(case_factory):
    """DS-CNN's depthwise 3x3 and 1x1 layers write over their input: one
    activation buffer holds every 25x5xC tensor."""
    c = case_factory("ds_cnn_s")
    graph = read(c.model)
    planned = {layer.op: in_place(layer) for layer in graph.layers if layer.op != "CONV_2D"
               or layer.filter_hw == (1, 1)}
    assert planned["DEPTHWISE_CONV_2D"] and planned["CONV_2D"]
    first = graph.layers[0]
    assert first.op == "CONV_2D" and first.filter_hw != (1, 1) and not in_place(first)
    p = plan(graph)
    assert max(p.sizes) == max(layer.output.elements for layer in graph.layers)
    assert min(p.sizes) < first.output.elements


def test_export_is_reproducible_and_says_what_it_planned(case_factory):
    c = case_factory(MODEL_CONFIGS[0])
    again = _export_engine(c.generated.parent, c.model, c.spec, out="again")
    assert {p.name: p.read_bytes() for p in again.iterdir()} == {
        p.name: p.read_bytes() for p in c.generated.iterdir()}
    assert sorted(p.name for p in again.iterdir()) == sorted([
        "engine_model.c", "engine_model.h", "model_settings.h", "labels.c", "labels.h",
        "feature_config.c", "feature_config.h", "frontend_tables.c", "frontend_tables.h",
        "recognizer_config.h"])
    settings = (again / "model_settings.h").read_text()
    graph = read(c.model)
    p = plan(graph)
    assert "#define KEYSPOT_ENGINE_C 1\n" in settings and "KEYSPOT_TENSOR_ARENA_BYTES" not in settings
    assert f"#define KEYSPOT_ENGINE_RAM_BYTES {sum(p.sizes) + p.scratch}\n" in settings
    # Each buffer is exactly as large as the largest tensor it holds.
    held = [max([t.elements for t in [graph.input] + [layer.output for layer in graph.layers]
                 if p.buffer_of[t.index] == b], default=0) for b in (0, 1)]
    assert list(p.sizes) == held


# ---------------------------------------------------------------- the pipeline's own model

GENERATED = Path("firmware/psoc6/source/generated")


@pytest.mark.slow
def test_smoke_pipeline_model_on_its_test_split(pipeline, tmp_path):
    root = pipeline["root"]
    model = (root / "models/model_int8.tflite").read_bytes()
    spec = FeatureSpec.load(root / "data/features/spec.json")
    generated = tmp_path / "generated"
    export(root / "models/model_int8.tflite", root / "data/features/spec.json", root / "reports/quantize.json",
           generated, engine="c")
    _run(["make", "-s", "-C", CORE, f"GENERATED={generated}", f"BUILD={tmp_path / 'build'}", "host"])
    q = io_quantization(model)
    x = quantize_input(np.load(root / "data/features/test.npz")["x"], q["input_scale"], q["input_zero_point"])
    outputs, c_layers = _c_engine(tmp_path / "build", x, len(spec.labels))
    reference, tf_layers = _tflite_reference(model, x, list(c_layers))
    print(f"\nsmoke pipeline: {len(x)} test clips, {len(c_layers)} layers")
    assert _differences(model, c_layers, tf_layers) == []
    assert np.array_equal(outputs, reference)
    if shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"):
        # The whole test split through the DSP kernels on the Cortex-M4F.
        target, target_layers = _c_engine_qemu(generated, tmp_path / "m4", x, len(spec.labels))
        assert _differences(model, target_layers, tf_layers) == []
        assert np.array_equal(target, reference)


# ---------------------------------------------------------------- on the Cortex-M4F

def _chain_lines(text: str) -> list[str]:
    """The lines both builds print: features, scores and label of each clip."""
    return [line for line in text.splitlines()
            if line.split()[2:3] in (["int8"], ["scores"], ["label"]) or line == "done"]


@needs_qemu
@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_cortex_m4_under_qemu_runs_the_chain_as_the_host_does(case_factory, clips, tmp_path, name):
    c = case_factory(name)
    _, pcm, _ = clips
    pick = pcm[[0, 1, 3, 4, 10]]
    write_test_clips(tmp_path / "clips", pick, "tests/test_c_engine.py")
    build = tmp_path / "build"
    _run(["make", "-s", "-C", CORE, f"GENERATED={c.generated}", f"BUILD={build}",
          f"CLIPS={tmp_path / 'clips'}", "qemu"])
    target = subprocess.run(
        ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
         "-semihosting-config", "enable=on,target=native", "-kernel", str(build / "keyspot_qemu.elf")],
        capture_output=True, timeout=120)
    assert target.returncode == 0, (target.stdout[-2000:], target.stderr[-2000:])
    host = _run([c.build / "keyspot_chain", "-"], input=np.ascontiguousarray(pick, "<i2").tobytes())
    target_lines = _chain_lines(target.stdout.decode("utf-8", "replace"))
    host_lines = _chain_lines(host.stdout.decode("utf-8", "replace"))
    assert len(target_lines) == 3 * len(pick) + 1
    assert target_lines == host_lines
    # And the scores are the interpreter's on the features the target computed.
    x8 = np.stack([np.frombuffer(bytes.fromhex(line.split()[3]), np.int8)
                   for line in target_lines if line.split()[2:3] == ["int8"]])
    scores = np.stack([np.frombuffer(bytes.fromhex(line.split()[3]), np.int8)
                       for line in target_lines if line.split()[2:3] == ["scores"]])
    reference, _ = _tflite_reference(c.model, x8, [])
    assert np.array_equal(scores, reference)
    labels = [line.split(maxsplit=4)[4] for line in target_lines if line.split()[2:3] == ["label"]]
    assert labels == [c.spec.labels[i] for i in reference.argmax(1)]


# ---------------------------------------------------------------- what it refuses

def _tanh_model(spec: FeatureSpec, calibration: np.ndarray, folder: Path) -> bytes:
    import keras
    from keras import layers

    from keyspot.keras_files import export_saved_model
    from keyspot.quantize import convert

    keras.utils.set_random_seed(0)
    inputs = keras.Input((*spec.shape, 1))
    x = layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    x = layers.Activation("tanh")(x)
    outputs = layers.Dense(len(spec.labels), activation="softmax")(layers.Flatten()(x))
    export_saved_model(keras.Model(inputs, outputs), folder / "saved_model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert(folder / "saved_model", calibration[..., None])


def _bench_engine_report():
    module_spec = importlib.util.spec_from_file_location("engine_report", REPO / "bench/engine_report.py")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["engine_report"] = module   # its dataclasses look their module up there
    module_spec.loader.exec_module(module)
    return module


def _stage():
    module_spec = importlib.util.spec_from_file_location("c_export_stage", REPO / "stages/c_export.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_unsupported_operator_is_refused_by_name(clips, tmp_path, monkeypatch, capsys):
    spec, _, x = clips
    model = _tanh_model(spec, x, tmp_path)
    report = {"tflm_arena_bytes": 65536, **io_quantization(model)}
    with pytest.raises(ExportError, match=r"operator 1 \(TANH\): the C engine has no kernel for TANH"):
        generate(model, spec, report, header_comment({}), engine="c")
    assert "op_resolver.h" in generate(model, spec, report, header_comment({}))  # TFLM runs it

    # Through the stage: one line naming the model file and the operator, nothing written.
    (tmp_path / "models").mkdir()
    (tmp_path / "models/model_int8.tflite").write_bytes(model)
    (tmp_path / "data/features").mkdir(parents=True)
    spec.save(tmp_path / "data/features/spec.json")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/quantize.json").write_text(json.dumps(report))
    (tmp_path / "reports/calibration.json").write_text(json.dumps({"enabled": False, "recognizer": {
        "average_window_ms": 1000, "detection_threshold": 200, "suppression_ms": 1500, "minimum_count": 3}}))
    params = compose(REPO / "conf", ["export.engine=c", "export.out_dir=fw/generated"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert _stage().main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "models/model_int8.tflite" in err and "TANH" in err and "export.engine=tflm" in err
    assert not (tmp_path / "fw").exists()


def test_unsupported_option_is_refused_by_name(case_factory):
    """A fused activation the int8 kernels do not apply, set in the flatbuffer."""
    c = case_factory(MODEL_CONFIGS[0])
    m = schema.ModelT.InitFromPackedBuf(bytearray(c.model), 0)
    first = m.subgraphs[0].operators[0]
    first.builtinOptions.fusedActivationFunction = schema.ActivationFunctionType.SIGN_BIT
    builder = flatbuffers.Builder(len(c.model))
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    report = {"tflm_arena_bytes": 65536, **io_quantization(c.model)}
    with pytest.raises(ExportError, match=r"operator 0 \(CONV_2D\): fused_activation_function=SIGN_BIT "
                                          r"is not supported"):
        generate(bytes(builder.Output()), c.spec, report, header_comment({}), engine="c")


def test_unknown_engine_is_refused_by_params():
    from keyspot.params import ParamsError

    with pytest.raises(ParamsError, match="export.engine"):
        from_dict(compose(REPO / "conf", ["export.engine=cmsis"]))


# ---------------------------------------------------------------- RAM

def test_default_model_needs_at_least_30_percent_less_ram_than_the_tflm_arena(clips, tmp_path):
    """The configured default model at its configured size: the engine's two
    activation buffers against the arena TFLite Micro measures for it."""
    import keras

    from keyspot import models
    from keyspot.keras_files import export_saved_model
    from keyspot.quantize import convert, tflm_arena_bytes

    params = from_dict(compose(REPO / "conf"))
    spec, _, x = clips
    keras.utils.set_random_seed(0)
    export_saved_model(models.build(params.model, spec.shape, len(spec.labels)), tmp_path / "saved_model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert(tmp_path / "saved_model", x[..., None])
    engine, arena = plan(read(model)).ram_bytes, tflm_arena_bytes(model)
    print(f"\n{params.model.name}: C engine {engine} B of RAM, TFLM arena {arena} B "
          f"({1 - engine / arena:.1%} less)")
    assert engine <= 0.7 * arena


# The PSoC 6 application with either runner is built against the real
# Infineon libraries in tests/test_psoc6_firmware.py.


REAL = [REPO / p for p in ("models/model_int8.tflite", "data/features/spec.json", "reports/quantize.json",
                           "data/features/test.npz")]


@pytest.mark.skipif(not all(p.is_file() for p in REAL),
                    reason="needs this checkout's pipeline outputs (`make run`): " + ", ".join(
                        str(p.relative_to(REPO)) for p in REAL if not p.is_file()))
def test_this_checkouts_trained_model_on_its_test_split(tmp_path):
    """The trained model `make run` left in this checkout (locally; CI has
    none), on every clip of its test split."""
    model = REAL[0].read_bytes()
    spec = FeatureSpec.load(REAL[1])
    export(*REAL[:3], tmp_path / "generated", engine="c")
    _run(["make", "-s", "-C", CORE, f"GENERATED={tmp_path / 'generated'}", f"BUILD={tmp_path / 'build'}", "host"])
    q = io_quantization(model)
    x = quantize_input(np.load(REAL[3])["x"], q["input_scale"], q["input_zero_point"])
    outputs, c_layers = _c_engine(tmp_path / "build", x, len(spec.labels))
    reference, tf_layers = _tflite_reference(model, x, list(c_layers))
    print(f"\nthis checkout: {len(x)} test clips, {len(c_layers)} layers")
    assert _differences(model, c_layers, tf_layers) == []
    assert np.array_equal(outputs, reference)
    if shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"):
        target, _ = _c_engine_qemu(tmp_path / "generated", tmp_path / "m4", x, len(spec.labels), trace=False)
        assert np.array_equal(target, reference)


# ---------------------------------------------------------------- the report

def test_instruction_count_from_the_qemu_lines():
    text = ("counter 25000000 empty 2\nclip 0 int8 00\nclip 0 ticks frontend 10 engine 1602\n"
            "clip 1 ticks frontend 10 engine 3202\ndone\n")
    # 64 ns per instruction at shift 6, 40 ns per tick: (ticks - empty) * 40 / 64.
    assert instructions_per_inference(text, shift=6) == 1500
    assert instructions_per_inference(text, shift=0) == 96000


@needs_qemu
def test_engine_report_measures_a_registered_model(psoc6_libs, tmp_path, capsys):
    from keyspot.export.device_model import compact_zero_points

    engine_report = _bench_engine_report()

    name = "tiny_conv" if "tiny_conv" in MODEL_CONFIGS else MODEL_CONFIGS[0]
    assert engine_report.main([name, "--repo", str(REPO), "--json", str(tmp_path / "report.json")]) == 0
    table = capsys.readouterr().out
    (row,) = json.loads((tmp_path / "report.json").read_text())
    print(f"\n{table}")
    assert row["model"] == name and f"| {name}" in table
    model, _, _, macs = engine_report.int8_model(REPO, name, tmp_path)
    # The linked .bss is the plan, each buffer rounded up to a word.
    assert 0 <= row["engine_ram_bytes"] - plan(read(model)).ram_bytes < 12
    assert row["tflm_model_bytes"] == len(compact_zero_points(model))   # the board's copy, as c-export writes it
    assert row["engine_flash_bytes"] > row["engine_constant_bytes"] > 0
    assert 0 < row["tflm_arena_bytes"] and row["instructions"] > 100_000
    # TFLite Micro with CMSIS-NN on the same target: counted, and within the arena c-export writes.
    assert row["tflm_instructions"] > 10_000 and row["macs"] == macs > 0
    assert 0 < row["tflm_arena_used_target"] <= row["tflm_arena_bytes"]
    assert f"{row['tflm_instructions']:,}" in table
