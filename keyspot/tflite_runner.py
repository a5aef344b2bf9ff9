"""Running a TensorFlow Lite model, float or int8, one example at a time.

The one inference loop of keyspot: the quantize stage checks the int8 model
with it, `keyspot predict --int8` labels files with it, and `keyspot serve`
answers requests with it. Inputs are float features; an int8 model gets
them quantised with its input scale and zero point (`quantize_input`, the
rule the firmware's frontend applies), and its outputs come back either raw
(`outputs`) or dequantised to probabilities (`__call__`).

Two interpreters run it. `reference`: TensorFlow's TFLite interpreter with
its reference kernels, the arithmetic TensorFlow Lite Micro uses, for
quantize and evaluate. `litert`: the LiteRT interpreter (ai-edge-litert),
which imports in a fraction of a second and without TensorFlow, for
`keyspot predict` (with the same reference kernels), `keyspot listen` and
the server.
"""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from keyspot.cpu import cores
from keyspot.features import FeatureSpec


class ModelError(ValueError):
    """The model cannot be loaded, or does not fit the feature spec."""


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def reference_interpreter(model: bytes):
    """TFLite's reference kernels (as TFLM runs them) rather than XNNPACK."""
    import tensorflow as tf

    # tf.lite.Interpreter warns that it moves to ai_edge_litert; it is the
    # interpreter that ships with this TensorFlow, so the warning is noise.
    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
    interpreter = tf.lite.Interpreter(
        model_content=model,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    return interpreter


class TFLiteRunner:
    """Calls with (batch, frames, coefficients[, 1]) float32 features, returns
    (batch, labels) probabilities. Threads take turns at the interpreter (a
    lock), which holds one input at a time."""

    def __init__(self, interpreter):
        self.interpreter = interpreter
        self.lock = threading.Lock()
        (self.input,) = interpreter.get_input_details()
        (self.output,) = interpreter.get_output_details()
        self.quantized = self.input["dtype"] == np.int8
        self.kind = "int8" if self.quantized else "float32"

    @classmethod
    def reference(cls, model: bytes) -> TFLiteRunner:
        return cls(reference_interpreter(model))

    @classmethod
    def litert(cls, model: bytes, num_threads: int = 1, reference_kernels: bool = False) -> TFLiteRunner:
        """reference_kernels: TFLite's reference kernels, as `reference` runs
        them, instead of the optimised ones (XNNPACK)."""
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        from keyspot.quiet_tf import notes_dropped

        resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
        try:
            with notes_dropped():   # LiteRT's note that it took XNNPACK
                interpreter = Interpreter(model_content=model, num_threads=num_threads,
                                          experimental_op_resolver_type=resolver)
                interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ModelError(f"not a TensorFlow Lite model: {err}") from None
        return cls(interpreter)

    def check_spec(self, spec: FeatureSpec) -> TFLiteRunner:
        """ModelError unless the model takes this spec's features and gives its labels."""
        want_in = (1, *spec.shape, 1)
        if tuple(self.input["shape"]) != want_in:
            raise ModelError(f"model input {tuple(self.input['shape'])} does not match the feature "
                             f"spec's {want_in}; serve the model trained on this spec")
        if tuple(self.output["shape"]) != (1, len(spec.labels)):
            raise ModelError(f"model output {tuple(self.output['shape'])} does not match the "
                             f"{len(spec.labels)} labels of the feature spec")
        return self

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """The model's own outputs (int8 for an int8 model), example by example."""
        in_scale, in_zero = self.input["quantization"]
        rows = []
        for example in np.asarray(x, dtype=np.float32):
            example = example[None]
            if self.quantized:
                example = quantize_input(example, in_scale, in_zero)
            with self.lock:
                self.interpreter.set_tensor(self.input["index"], example)
                self.interpreter.invoke()
                rows.append(self.interpreter.get_tensor(self.output["index"])[0].copy())
        return np.stack(rows)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.outputs(x)
        if not self.quantized:
            return y
        out_scale, out_zero = self.output["quantization"]
        return (y.astype(np.float32) - out_zero) * out_scale


class ReferenceRunners:
    """TFLiteRunner.reference once for each core: `outputs` and `__call__`
    split a batch into as many contiguous parts, one interpreter each, on
    threads (the interpreter lets go of the GIL while it runs). The rows come
    back in order and are those of one interpreter: each example is run
    alone, so where it ran changes nothing."""

    def __init__(self, model: bytes, count: int | None = None):
        self.runners = [TFLiteRunner.reference(model) for _ in range(count or cores())]

    def _map(self, method, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        parts = [p for p in np.array_split(x, len(self.runners)) if len(p)]
        if len(parts) <= 1:
            return method(self.runners[0], x)
        with ThreadPoolExecutor(len(parts), thread_name_prefix="tflite") as pool:
            return np.concatenate(list(pool.map(method, self.runners, parts)))

    def outputs(self, x: np.ndarray) -> np.ndarray:
        return self._map(TFLiteRunner.outputs, x)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._map(TFLiteRunner.__call__, x)
