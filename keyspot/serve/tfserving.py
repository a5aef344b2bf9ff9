"""The `predict` of the SageMaker host: the model input to TensorFlow Serving's REST API.

Inside the SageMaker TensorFlow Serving container, TensorFlow Serving runs
the SavedModel and code/inference.py hands it the tensor that
keyspot.serve.handler computed. Standard library and numpy only: this
module is copied into that container.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

import numpy as np


def request_body(model_input: np.ndarray) -> str:
    """The model input (batch, frames, coefficients, 1) as {"instances": [...]}."""
    return json.dumps({"instances": np.asarray(model_input, dtype=np.float32).tolist()})


def predictions(body: bytes | str) -> np.ndarray:
    """TensorFlow Serving's {"predictions": [...]} response to (batch, n_labels)."""
    try:
        rows = json.loads(body)["predictions"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"TensorFlow Serving answered without predictions: {str(body)[:200]}") from err
    # A model with named outputs answers one {name: value} object per row.
    if rows and isinstance(rows[0], dict):
        if len(rows[0]) != 1:
            raise ValueError(f"expected one model output, got {sorted(rows[0])}")
        rows = [next(iter(row.values())) for row in rows]
    return np.asarray(rows, dtype=np.float64)


def predictor(rest_uri: str, timeout_s: float = 60.0) -> Callable[[np.ndarray], np.ndarray]:
    """A `predict` that posts to TensorFlow Serving at `rest_uri` (the container's
    context.rest_uri, e.g. http://localhost:8501/v1/models/model:predict)."""

    def predict(model_input: np.ndarray) -> np.ndarray:
        request = urllib.request.Request(rest_uri, data=request_body(model_input).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return predictions(response.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")[:500]
            raise ValueError(f"TensorFlow Serving answered {err.code}: {detail}") from None

    return predict
