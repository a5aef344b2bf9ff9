"""c-export: the generated C matches the model, labels and spec, and builds."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from keyspot.export import ExportError, export, generate
from keyspot.export.c_model import INT8_KERNELS, SOURCES, header_comment
from keyspot.export.device_model import compact_zero_points, expand_zero_points
from keyspot.export.tflite_model import inspect, resolver_method
from keyspot.features import FeatureSpec

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning"),
    pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning"),
]

REPO = Path(__file__).resolve().parents[1]
MODEL = "models/model_int8.tflite"
SPEC = "data/features/spec.json"
REPORT = "reports/quantize.json"
CALIBRATION = "reports/calibration.json"
# What calibrate chose, as c-export reads it; unlike export.recognizer's defaults.
CALIBRATED = {"average_window_ms": 500, "detection_threshold": 231, "suppression_ms": 1000, "minimum_count": 2}
OUT = "firmware/psoc6/source/generated"
# Odd labels on purpose: quotes, '??' (a trigraph under -std=c11), non-ASCII.
LABELS = ("_silence_", "_unknown_", "yes", 'say "go"??!', "über")
FRAMES, COEFFS = 8, 5
ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]


def _spec() -> FeatureSpec:
    rng = np.random.default_rng(0)
    spec = FeatureSpec(kind="mfcc", sample_rate=8000, clip_samples=900, window_samples=200,
                       hop_samples=100, fft_size=256, mel_bins=8, mel_fmin=20.0, mel_fmax=3800.0,
                       num_mfcc=COEFFS, log_floor=1e-10, labels=LABELS,
                       mean=tuple(float(v) for v in rng.normal(size=COEFFS) * 10),
                       std=tuple(float(v) for v in rng.uniform(0.5, 5.0, size=COEFFS)))
    assert spec.shape == (FRAMES, COEFFS)
    return spec


@pytest.fixture(scope="session")
def tflite_model(tmp_path_factory) -> bytes:
    """A tiny Conv2D + Dense classifier, converted to full-integer int8."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.Input((FRAMES, COEFFS, 1), batch_size=1),
        tf.keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        tf.keras.layers.MaxPooling2D(2),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(len(LABELS)),
        tf.keras.layers.Softmax(),
    ])
    calibration = np.random.default_rng(1).normal(size=(16, FRAMES, COEFFS, 1)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None]] for x in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def _interpreter_details(model: bytes):
    import tensorflow as tf

    # Without the default XNNPACK delegate, which would show up as one DELEGATE op.
    interpreter = tf.lite.Interpreter(
        model_content=model,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    return (interpreter.get_input_details()[0], interpreter.get_output_details()[0],
            {op["op_name"] for op in interpreter._get_ops_details()})


@pytest.fixture
def workdir(tmp_path, tflite_model, monkeypatch) -> Path:
    """A run directory holding the three c-export inputs at their DVC paths."""
    inp, out, _ = _interpreter_details(tflite_model)
    (tmp_path / "models").mkdir()
    (tmp_path / MODEL).write_bytes(tflite_model)
    (tmp_path / "data/features").mkdir(parents=True)
    _spec().save(tmp_path / SPEC)
    (tmp_path / "reports").mkdir()
    (tmp_path / REPORT).write_text(json.dumps({
        "tflm_arena_bytes": 6144,
        "input_scale": float(inp["quantization"][0]), "input_zero_point": int(inp["quantization"][1]),
        "output_scale": float(out["quantization"][0]), "output_zero_point": int(out["quantization"][1]),
    }))
    (tmp_path / CALIBRATION).write_text(json.dumps({"enabled": False, "recognizer": CALIBRATED}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _export(workdir: Path) -> Path:
    export(MODEL, SPEC, REPORT, OUT)
    return workdir / OUT


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run a compiler or program; on failure show its stderr, not just the exit code."""
    result = subprocess.run([str(c) for c in cmd], capture_output=True)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    return result


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_file_carries_header_with_input_hashes(workdir):
    out = _export(workdir)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["model_data.h", "model_data.c", "model_settings.h", "labels.h", "labels.c",
                            "feature_config.h", "feature_config.c", "op_resolver.h", "recognizer_config.h",
                            "frontend_tables.h", "frontend_tables.c"])
    for path in out.iterdir():
        head = "\n".join(path.read_text().splitlines()[:6])
        assert "Generated by keyspot c-export; do not edit." in head, path.name
        assert f"{MODEL} sha256={_sha(workdir / MODEL)}" in head, path.name
        assert f"{SPEC} sha256={_sha(workdir / SPEC)}" in head, path.name


def test_regenerating_gives_identical_bytes_and_leaves_nothing_else(workdir):
    out = _export(workdir)
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    # A file an earlier export wrote (the other engine's, say) goes; a file of
    # anyone else's would stop the export (tests/test_bad_input.py).
    (out / "stale.c").write_text(header_comment({}) + "int stale;\n")
    _export(workdir)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert sorted(p.name for p in out.parent.iterdir()) == ["generated"]  # no temp folders left
    for text in first.values():
        assert not re.search(rb"20\d\d-\d\d-\d\d|/tmp/|pytest", text)


def test_model_bytes_xxd_style(workdir, tflite_model):
    text = (_export(workdir) / "model_data.c").read_text()
    assert "alignas(16) const unsigned char g_model_data[] = {" in text
    rows = re.findall(r"^  (0x[0-9a-f]{2}(?:, 0x[0-9a-f]{2})*),?$", text, re.M)
    assert all(len(r.split(", ")) == 12 for r in rows[:-1]) and 1 <= len(rows[-1].split(", ")) <= 12
    assert bytes(int(b, 16) for r in rows for b in r.split(", ")) == compact_zero_points(tflite_model)


def _host_main(workdir: Path) -> Path:
    main = workdir / "test_main.c"
    main.write_text(r"""
#include <stdint.h>
#include <stdio.h>
#include "feature_config.h"
#include "labels.h"
#include "model_data.h"
#include "model_settings.h"

int main(void) {
  uint32_t h = 2166136261u;  /* FNV-1a */
  for (unsigned int i = 0; i < g_model_data_len; ++i) { h ^= g_model_data[i]; h *= 16777619u; }
  printf("len %u\nfnv %08x\naligned %d\n", g_model_data_len, (unsigned)h,
         (int)((uintptr_t)g_model_data % 16 == 0));
  printf("arena %d\nshape %d %d %d\n", KEYSPOT_TENSOR_ARENA_BYTES, KEYSPOT_INPUT_FRAMES,
         KEYSPOT_INPUT_COEFFICIENTS, KEYSPOT_INPUT_ELEMENTS);
  printf("quant %.9g %d %.9g %d\n", KEYSPOT_INPUT_SCALE, KEYSPOT_INPUT_ZERO_POINT,
         KEYSPOT_OUTPUT_SCALE, KEYSPOT_OUTPUT_ZERO_POINT);
  printf("spec %s %d %d %d %d %d %d %d %.9g %.9g %.9g %d %d %d\n", KEYSPOT_FEATURE_KIND,
         KEYSPOT_FEATURE_KIND_MFCC, KEYSPOT_SAMPLE_RATE, KEYSPOT_CLIP_SAMPLES, KEYSPOT_WINDOW_SAMPLES,
         KEYSPOT_HOP_SAMPLES, KEYSPOT_FFT_SIZE, KEYSPOT_MEL_BINS, KEYSPOT_MEL_FMIN, KEYSPOT_MEL_FMAX,
         KEYSPOT_LOG_FLOOR, KEYSPOT_NUM_MFCC, KEYSPOT_NUM_FRAMES, KEYSPOT_NUM_COEFFICIENTS);
  for (int i = 0; i < KEYSPOT_NUM_COEFFICIENTS; ++i)
    printf("norm %.9g %.9g\n", g_feature_mean[i], g_feature_std[i]);
  for (int i = 0; i < KEYSPOT_NUM_LABELS; ++i) printf("label %s\n", g_labels[i]);
  return 0;
}
""")
    return main


def f32(value) -> str:
    """How C's printf("%.9g") shows `value` once stored as a float."""
    return f"{float(np.float32(value)):.9g}"


def _fnv1a(data: bytes) -> str:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return f"{h:08x}"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs host gcc")
def test_host_gcc_build_reproduces_model_labels_and_spec(workdir, tflite_model):
    out = _export(workdir)
    exe = workdir / "c_export_check"
    _run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{out}",
          _host_main(workdir), *(out / s for s in SOURCES), "-o", exe])
    lines = _run([exe]).stdout.decode("utf-8").splitlines()
    spec = _spec()
    inp, outp, _ = _interpreter_details(tflite_model)
    device = compact_zero_points(tflite_model)
    assert lines[:5] == [
        f"len {len(device)}", f"fnv {_fnv1a(device)}", "aligned 1", "arena 6144",
        f"shape {FRAMES} {COEFFS} {FRAMES * COEFFS}"]
    assert lines[5] == (f"quant {f32(inp['quantization'][0])} {inp['quantization'][1]} "
                        f"{f32(outp['quantization'][0])} {outp['quantization'][1]}")
    assert lines[6] == (f"spec mfcc 1 8000 900 200 100 256 8 {f32(20.0)} {f32(3800.0)} {f32(1e-10)} "
                        f"{COEFFS} {FRAMES} {COEFFS}")
    assert lines[7:7 + COEFFS] == [f"norm {f32(m)} {f32(s)}" for m, s in zip(spec.mean, spec.std, strict=True)]
    assert lines[7 + COEFFS:] == [f"label {label}" for label in LABELS]


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
def test_cortex_m4_cross_compile_keeps_model_aligned(workdir):
    out = _export(workdir)
    for source in SOURCES:
        obj = workdir / (source + ".o")
        _run(["arm-none-eabi-gcc", *ARM_FLAGS, "-std=c11", "-Wall", "-Werror", "-Os",
              "-fdata-sections", f"-I{out}", "-c", out / source, "-o", obj])
    sections = _run(["arm-none-eabi-readelf", "-SW", workdir / "model_data.c.o"]).stdout.decode()
    row = next(line for line in sections.splitlines() if ".rodata.g_model_data " in line)
    assert row.split()[-1] == "16"  # section alignment


def test_stripping_names_keeps_every_output_and_aligns_every_buffer(tflite_model):
    from keyspot.export.tflite_model import schema
    from keyspot.quantize import predict_tflite, predict_tflm
    from keyspot.tflite_strip import BUFFER_ALIGNMENT, buffer_data_offsets, strip_names

    stripped = strip_names(tflite_model)
    assert len(stripped) < len(tflite_model)
    before, after = (schema.Model.GetRootAs(bytearray(m), 0) for m in (tflite_model, stripped))
    assert before.SignatureDefsLength() == 1 and after.SignatureDefsLength() == 0
    graph = after.Subgraphs(0)
    assert graph.TensorsLength() == before.Subgraphs(0).TensorsLength()
    assert all(graph.Tensors(i).Name() is None for i in range(graph.TensorsLength()))
    offsets = buffer_data_offsets(stripped)
    assert offsets.keys() == buffer_data_offsets(tflite_model).keys()
    assert all(offset % BUFFER_ALIGNMENT == 0 for offset in offsets.values())
    info = inspect(tflite_model)
    assert inspect(stripped) == dataclasses.replace(info, input=dataclasses.replace(info.input, name=""),
                                                    output=dataclasses.replace(info.output, name=""))
    x = np.random.default_rng(3).normal(size=(32, FRAMES, COEFFS, 1)).astype(np.float32)
    np.testing.assert_array_equal(predict_tflite(stripped, x), predict_tflite(tflite_model, x))
    np.testing.assert_array_equal(predict_tflm(stripped, x, 8192), predict_tflm(tflite_model, x, 8192))


def test_the_runtimes_split_over_cores_give_one_interpreters_rows(tflite_model):
    """quantize and evaluate run a split across threads (TFLite) and
    processes (TFLite Micro); the rows come back whole and in order."""
    from keyspot.quantize import predict_tflm
    from keyspot.tflite_runner import ReferenceRunners, TFLiteRunner

    x = np.random.default_rng(5).normal(size=(7, FRAMES, COEFFS, 1)).astype(np.float32)
    one = TFLiteRunner.reference(tflite_model)
    np.testing.assert_array_equal(ReferenceRunners(tflite_model, 3).outputs(x), one.outputs(x))
    np.testing.assert_array_equal(ReferenceRunners(tflite_model, 3)(x), one(x))
    np.testing.assert_array_equal(ReferenceRunners(tflite_model, 9).outputs(x[:2]), one.outputs(x[:2]))
    np.testing.assert_array_equal(predict_tflm(tflite_model, x, 8192, workers=3), predict_tflm(tflite_model, x, 8192))


def test_the_boards_copy_stores_one_zero_point_per_weight_tensor(tflite_model):
    """TFLite Micro gives the compact copy the same outputs in the same arena;
    TFLite refuses it, and expanding it gives TFLite's model back."""
    from keyspot.export.tflite_model import schema
    from keyspot.quantize import predict_tflite, predict_tflm
    from keyspot.tflite_strip import buffer_data_offsets

    device = compact_zero_points(tflite_model)
    per_channel = [t for t in schema.ModelT.InitFromPackedBuf(bytearray(tflite_model), 0).subgraphs[0].tensors
                   if t.quantization is not None and t.quantization.scale is not None
                   and len(t.quantization.scale) > 1]
    assert per_channel, "the test model has no per-channel tensor"
    compact = schema.ModelT.InitFromPackedBuf(bytearray(device), 0).subgraphs[0].tensors
    for tensor in per_channel:
        assert len(tensor.quantization.zeroPoint) == len(tensor.quantization.scale)
    assert all(len(t.quantization.zeroPoint) == 1 for t in compact
               if t.quantization is not None and t.quantization.scale is not None and len(t.quantization.scale) > 1)
    expanded = expand_zero_points(device)
    # 8 bytes for each zero point dropped, against the same tree packed in TFLite's form
    assert len(expanded) - len(device) == 8 * sum(len(t.quantization.scale) - 1 for t in per_channel)
    assert len(device) < len(tflite_model)
    assert all(offset % 16 == 0 for offset in buffer_data_offsets(device).values())

    x = np.random.default_rng(5).normal(size=(32, FRAMES, COEFFS, 1)).astype(np.float32)
    np.testing.assert_array_equal(predict_tflm(device, x, 6144), predict_tflm(tflite_model, x, 6144))
    with pytest.raises(Exception, match="zero_point"):
        predict_tflite(device, x[:1])
    np.testing.assert_array_equal(predict_tflite(expanded, x), predict_tflite(tflite_model, x))
    assert compact_zero_points(device) == device
    with pytest.raises(ValueError, match="TFL3"):
        compact_zero_points(b"not a model at all")


def test_stripping_refuses_bytes_that_are_not_a_model():
    from keyspot.tflite_strip import strip_names

    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        strip_names(b"GIF89a" + bytes(64))


def test_op_resolver_registers_exactly_the_models_ops(workdir, tflite_model):
    _, _, ops = _interpreter_details(tflite_model)
    text = (_export(workdir) / "op_resolver.h").read_text()
    calls = re.findall(r"resolver\.(Add\w+)\(", text)
    assert sorted(calls) == sorted(resolver_method(op) for op in ops)
    # CMSIS-NN's int8-only kernels where TFLite Micro has them.
    assert "resolver.AddConv2D(tflite::Register_CONV_2D_INT8())" in text
    assert "resolver.AddMaxPool2D(tflite::Register_MAX_POOL_2D_INT8())" in text
    assert {"AddConv2D", "AddMaxPool2D", "AddFullyConnected", "AddSoftmax"} <= set(calls)
    assert f"#define KEYSPOT_OP_COUNT {len(ops)}\n" in text
    assert set(inspect(tflite_model).ops) == ops


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs host g++")
def test_op_resolver_compiles_against_tflm_method_names(workdir):
    """Build op_resolver.h against a stand-in for TFLM's MicroMutableOpResolver
    whose Add* methods carry TFLM's real names and take a kernel registration,
    as TFLM's do; an unknown name fails to compile. (tests/test_psoc6_firmware.py
    builds it against TFLM itself.)"""
    out = _export(workdir)
    stub = workdir / "stub/tensorflow/lite/micro/micro_mutable_op_resolver.h"
    stub.parent.mkdir(parents=True)
    methods = ["Conv2D", "DepthwiseConv2D", "FullyConnected", "MaxPool2D", "AveragePool2D",
               "Softmax", "Reshape", "Quantize", "Dequantize", "Relu", "Relu6", "Add", "Mul", "Mean",
               "Pad", "Concatenation", "StridedSlice", "Shape", "Pack", "Logistic", "Tanh"]
    stub.write_text("#pragma once\n#include <cstdio>\ntypedef enum { kTfLiteOk, kTfLiteError } TfLiteStatus;\n"
                    "namespace tflite { struct TFLMRegistration {};\n"
                    + "".join(f"inline TFLMRegistration {f}() {{ return {{}}; }}\n" for f in INT8_KERNELS.values())
                    + "template <unsigned N> struct MicroMutableOpResolver {\n"
                    "  unsigned n = 0;\n"
                    "  TfLiteStatus Reg(const char *m) { if (n == N) return kTfLiteError; ++n;"
                    " std::printf(\"%s\\n\", m); return kTfLiteOk; }\n"
                    + "".join(f"  TfLiteStatus Add{m}(const TFLMRegistration & = {{}}) {{ return Reg(\"Add{m}\"); }}\n"
                              for m in methods)
                    + "}; }\n")
    main = workdir / "resolver_main.cc"
    main.write_text('#include "op_resolver.h"\nint main() { KeyspotOpResolver r;\n'
                    "  return keyspot_register_ops(r) == kTfLiteOk && r.n == KEYSPOT_OP_COUNT ? 0 : 1; }\n")
    exe = workdir / "resolver_check"
    _run(["g++", "-std=c++17", "-Wall", "-Werror", f"-I{out}", f"-I{stub.parents[3]}", main, "-o", exe])
    printed = _run([exe]).stdout.decode().split()
    assert printed == re.findall(r"resolver\.(Add\w+)\(", (out / "op_resolver.h").read_text())


def test_resolver_method_names():
    assert resolver_method("CONV_2D") == "AddConv2D"
    assert resolver_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert resolver_method("FULLY_CONNECTED") == "AddFullyConnected"
    assert resolver_method("L2_NORMALIZATION") == "AddL2Normalization"
    assert resolver_method("BATCH_MATMUL") == "AddBatchMatMul"


def test_inconsistent_inputs_are_named(workdir, tflite_model):
    report = json.loads((workdir / REPORT).read_text())
    comment = header_comment({MODEL: tflite_model})
    spec = _spec()
    fewer = FeatureSpec(**{**spec.__dict__, "labels": LABELS[:-1]})
    with pytest.raises(ExportError, match=r"5 outputs but .* 4 labels"):
        generate(tflite_model, fewer, report, comment)
    with pytest.raises(ExportError, match="tflm_arena_bytes"):
        generate(tflite_model, spec, {k: v for k, v in report.items() if k != "tflm_arena_bytes"}, comment)
    with pytest.raises(ExportError, match="input_scale.*stale"):
        generate(tflite_model, spec, {**report, "input_scale": report["input_scale"] * 2}, comment)
    with pytest.raises(ExportError, match="not a TFLite flatbuffer"):
        generate(b"not a model at all", spec, report, comment)


def _stage():
    spec = importlib.util.spec_from_file_location("c_export_stage", REPO / "stages/c_export.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stage_missing_input_says_which_and_what_to_run(workdir, capsys):
    (workdir / MODEL).unlink()
    assert _stage().main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert MODEL in err and "dvc repro quantize" in err


def test_stage_without_calibration_says_what_to_run(workdir, capsys):
    (workdir / CALIBRATION).unlink()
    assert _stage().main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert CALIBRATION in err and "dvc repro calibrate" in err


def test_stage_writes_the_calibrated_recognizer(workdir, capsys):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from keyspot.recognizer import from_header

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        cfg = compose(config_name="config", overrides=["export.out_dir=fw/generated"])
    (workdir / "params.yaml").write_text(yaml.safe_dump(OmegaConf.to_container(cfg, resolve=True)))
    assert _stage().main([]) == 0
    got = from_header(workdir / "fw/generated")
    assert {k: getattr(got, k) for k in CALIBRATED} == CALIBRATED


def test_stage_writes_to_params_out_dir(workdir, capsys):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        cfg = compose(config_name="config", overrides=["export.out_dir=fw/generated"])
    (workdir / "params.yaml").write_text(yaml.safe_dump(OmegaConf.to_container(cfg, resolve=True)))
    assert _stage().main([]) == 0
    assert "fw/generated" in capsys.readouterr().out
    assert (workdir / "fw/generated/model_data.c").is_file()
    assert not os.path.exists(workdir / OUT)
