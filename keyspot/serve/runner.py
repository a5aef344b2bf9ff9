"""The `predict` of the local host: a TensorFlow Lite model run in-process.

The LiteRT interpreter (ai-edge-litert) runs the model: it imports in a
fraction of a second and without TensorFlow, and invokes this size of model
in well under a millisecond, where a SavedModel call through TensorFlow
costs about ten times that and `keras.Model.predict` about a thousand. By
default the model is the float TFLite conversion of models/saved_model,
the SavedModel that the SageMaker endpoint serves, so both hosts answer with
the same probabilities (to float rounding); `--int8` serves
models/model_int8.tflite, the numbers the microcontroller computes.
"""

from __future__ import annotations

import threading

import numpy as np

from keyspot.features import FeatureSpec


class ModelError(ValueError):
    """The model cannot be served with this feature spec."""


class TFLiteRunner:
    """Calls with (batch, frames, coefficients, 1) float32, returns (batch, n_labels) probabilities.

    One per worker process, as `keyspot serve` runs it; the worker's threads
    take turns at the interpreter (a lock), which holds one input at a time.
    """

    def __init__(self, model: bytes, spec: FeatureSpec, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.lock = threading.Lock()
        try:
            self.interpreter = Interpreter(model_content=model, num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ModelError(f"not a TensorFlow Lite model: {err}") from None
        (self.input,) = self.interpreter.get_input_details()
        (self.output,) = self.interpreter.get_output_details()
        want_in = (1, *spec.shape, 1)
        if tuple(self.input["shape"]) != want_in:
            raise ModelError(f"model input {tuple(self.input['shape'])} does not match the feature "
                             f"spec's {want_in}; serve the model trained on this spec")
        if tuple(self.output["shape"]) != (1, len(spec.labels)):
            raise ModelError(f"model output {tuple(self.output['shape'])} does not match the "
                             f"{len(spec.labels)} labels of the feature spec")
        self.quantized = self.input["dtype"] == np.int8
        self.kind = "int8" if self.quantized else "float32"

    def __call__(self, model_input: np.ndarray) -> np.ndarray:
        in_scale, in_zero = self.input["quantization"]
        out_scale, out_zero = self.output["quantization"]
        rows = []
        for example in np.asarray(model_input, dtype=np.float32):
            x = example[None]
            if self.quantized:
                x = np.clip(np.round(x / in_scale) + in_zero, -128, 127).astype(np.int8)
            with self.lock:
                self.interpreter.set_tensor(self.input["index"], x)
                self.interpreter.invoke()
                y = self.interpreter.get_tensor(self.output["index"])[0].copy()
            rows.append((y.astype(np.float32) - out_zero) * out_scale if self.quantized else y)
        return np.stack(rows)
