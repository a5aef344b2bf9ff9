"""Full-integer int8 quantisation and its check on two interpreters.

The model is calibrated on training features, then the test split is run
through the TFLite interpreter and through TensorFlow Lite Micro, the
runtime the firmware links, so the accuracy in the report is the accuracy
on the device. The TFLM arena size is measured, not guessed. The model is
stripped of tensor names and signatures, which no runtime on the device reads.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from keyspot import artifacts, cpu, features, keras_files
from keyspot.features import FeatureSpec
from keyspot.tflite_runner import ReferenceRunners, TFLiteRunner, quantize_input
from keyspot.tflite_strip import strip_names


def convert(saved_model_dir: Path, calibration: np.ndarray) -> bytes:
    import tensorflow as tf

    def representative():
        for example in calibration:
            yield [example[None, ...].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return strip_names(converter.convert())


def predict_tflite(model: bytes, x: np.ndarray) -> np.ndarray:
    """int8 outputs of the TFLite interpreter's reference kernels, one example
    at a time, on every core."""
    return ReferenceRunners(model).outputs(x)


@contextmanager
def _quiet_native_output():
    """Silence what the C++ runtime prints on each failed arena allocation."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _tflm(model: bytes, arena_size: int):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model, arena_size=arena_size)


def tflm_arena_bytes(model: bytes, upper: int = 1 << 20) -> int:
    """The smallest tensor arena TFLM accepts for this model (to 16 bytes)."""
    low, high = 16, upper
    _tflm(model, high)  # fails loudly if even the upper bound is too small
    with _quiet_native_output():
        while high - low > 16:
            mid = (low + high) // 2 // 16 * 16
            try:
                _tflm(model, mid)
                high = mid
            except RuntimeError:
                low = mid
    return high


def predict_tflm(model: bytes, x: np.ndarray, arena_size: int, workers: int = 1) -> np.ndarray:
    """int8 outputs of TensorFlow Lite Micro, one example at a time. With
    `workers` > 1, contiguous parts of `x` run in as many processes (TFLM
    holds the GIL while it runs); the rows are the same."""
    parts = [p for p in np.array_split(x, max(1, workers)) if len(p)]
    if len(parts) <= 1:
        return _predict_tflm(model, x, arena_size)
    # Spawned: the parent has TensorFlow's threads running, which a fork would copy mid-flight.
    with ProcessPoolExecutor(len(parts), mp_context=multiprocessing.get_context("spawn")) as pool:
        return np.concatenate(list(pool.map(_predict_tflm, [model] * len(parts), parts, [arena_size] * len(parts))))


def predict_both(model: bytes, x: np.ndarray, arena_size: int) -> tuple[np.ndarray, np.ndarray]:
    """predict_tflite and predict_tflm, at once: TFLM's parts on processes
    (a thread here only waits for them), TFLite's on threads, so that every
    core is busy."""
    with ThreadPoolExecutor(1, thread_name_prefix="tflm") as background:
        pending = background.submit(predict_tflm, model, x, arena_size, cpu.cores())
        return predict_tflite(model, x), pending.result()


def _predict_tflm(model: bytes, x: np.ndarray, arena_size: int) -> np.ndarray:
    interpreter = _tflm(model, arena_size)
    inp = interpreter.get_input_details(0)
    scale, zero = inp["quantization_parameters"]["scales"][0], inp["quantization_parameters"]["zero_points"][0]
    outputs = []
    for example in x:
        interpreter.set_input(quantize_input(example[None], scale, zero), 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0)[0].copy())
        interpreter.reset()
    return np.stack(outputs)


def io_quantization(model: bytes) -> dict:
    runner = TFLiteRunner.reference(model)
    (in_scale, in_zero), (out_scale, out_zero) = runner.input["quantization"], runner.output["quantization"]
    return {"input_scale": float(in_scale), "input_zero_point": int(in_zero),
            "output_scale": float(out_scale), "output_zero_point": int(out_zero)}


def run(params, model_path: Path, saved_model_dir: Path, features_dir: Path,
        tflite_path: Path, report_path: Path) -> dict:
    cpu.pin_kernels()   # calibration runs the float model: its ranges must not depend on the CPU

    from keyspot import tracking

    spec = FeatureSpec.load(Path(features_dir) / "spec.json")
    x_train, _ = features.load_split(features_dir, "train")
    x_test, y_test = features.load_split(features_dir, "test")
    rng = np.random.default_rng(params.seed)
    pick = rng.choice(len(x_train), size=min(params.quantize.calibration_samples, len(x_train)),
                      replace=False)
    model = convert(saved_model_dir, x_train[np.sort(pick)])

    float_model = keras_files.load_model(model_path)
    float_accuracy = float((float_model.predict(x_test, batch_size=256, verbose=0).argmax(1) == y_test).mean())
    arena = tflm_arena_bytes(model)
    arena_budget = int(np.ceil(arena * params.quantize.arena_headroom / 16) * 16)
    tflite_out, tflm_out = predict_both(model, x_test, arena_budget)

    report = {
        "labels": list(spec.labels),
        "float_accuracy": round(float_accuracy, 6),
        "int8_accuracy_tflite": round(float((tflite_out.argmax(1) == y_test).mean()), 6),
        "int8_accuracy_tflm": round(float((tflm_out.argmax(1) == y_test).mean()), 6),
        # The two runtimes' softmax kernels may round one step apart.
        "tflite_tflm_max_output_diff": int(np.abs(tflite_out.astype(int) - tflm_out.astype(int)).max()),
        "tflite_tflm_label_agreement": round(float((tflite_out.argmax(1) == tflm_out.argmax(1)).mean()), 6),
        "model_bytes": len(model),
        "tflm_arena_bytes_measured": arena,
        "tflm_arena_bytes": arena_budget,
        "test_examples": int(len(y_test)),
        **io_quantization(model),
    }
    artifacts.write_bytes(tflite_path, model)
    artifacts.write_json(report_path, report)

    with tracking.model_run(params, model_path) as (mlflow, run):
        mlflow.log_metrics({k: float(v) for k, v in report.items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)})
        mlflow.log_artifact(str(tflite_path), "model")
        mlflow.set_tag(tracking.INT8_HASH_TAG, tracking.file_sha256(tflite_path))
        info = tracking.log_model(mlflow, float_model, model_path, tflite_path, Path(features_dir) / "spec.json",
                                  x_test[:1])
        version = tracking.register_model(mlflow, run, params, info)
        print(f"quantize: registered {tracking.registered_model_name(params)} version {version}"
              + (f"; c-export points @{params.tracking.alias} at it" if params.tracking.alias else ""))
    return report
