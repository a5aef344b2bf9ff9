"""Inference requests in, model inputs out; model outputs in, JSON out.

The one implementation of request handling: the SageMaker TensorFlow Serving
container (code/inference.py in model.tar.gz) and the local server both call
it. It imports numpy, scipy and soundfile (through keyspot.audio) and nothing
else, because a copy of it runs inside that container without TensorFlow.

Accepted bodies, by Content-Type:

- audio/wav, audio/x-wav, audio/wave: one clip of any readable audio; it is
  mixed to mono, resampled to the spec's rate and padded or trimmed.
- application/json: {"pcm": [int16, ...], "sample_rate": n} for one clip or
  {"pcm": [[...], ...]} for a batch (sample_rate defaults to the spec's), or
  {"features": ...} with already normalised features of shape
  (frames, coefficients) or (batch, frames, coefficients[, 1]).
- application/x-npy: an .npy array; int16 is PCM at the spec's rate, a float
  array is normalised features, shaped as above.
"""

from __future__ import annotations

import io
import json

import numpy as np

from keyspot import audio, features
from keyspot.features import FeatureSpec

WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave")
JSON_TYPE = "application/json"
NPY_TYPE = "application/x-npy"
CONTENT_TYPES = (*WAV_TYPES, JSON_TYPE, NPY_TYPE)


class RequestError(ValueError):
    """The request cannot be served as sent (an HTTP 4xx)."""


def parse_request(body: bytes, content_type: str, spec: FeatureSpec) -> np.ndarray:
    """A request body to normalised float32 features (batch, frames, coefficients)."""
    if body is None or len(body) == 0:
        raise RequestError("empty request body")
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind not in CONTENT_TYPES:
        raise RequestError(f"unsupported content type {content_type!r}; "
                           f"send one of {', '.join(CONTENT_TYPES)}")
    if kind in WAV_TYPES:
        try:
            pcm = audio.load_clip(bytes(body), spec.sample_rate, spec.clip_samples)
        except audio.AudioError as err:
            raise RequestError(f"body is not audio: {err}") from None
        return features.compute(pcm[None, :], spec)
    if kind == NPY_TYPE:
        try:
            array = np.load(io.BytesIO(body), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise RequestError(f"body is not a .npy array: {err}") from None
        if array.dtype == np.int16:
            return _pcm_features(array, spec.sample_rate, spec)
        if not np.issubdtype(array.dtype, np.floating):
            raise RequestError(f".npy array of dtype {array.dtype}: send int16 PCM or float features")
        return _check_features(array, spec)
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RequestError(f"body is not JSON: {err}") from None
    if not isinstance(data, dict) or ("pcm" in data) == ("features" in data):
        raise RequestError('JSON body must be an object with either "pcm" or "features"')
    if "features" in data:
        return _check_features(_array(data["features"], "features", np.float32), spec)
    rate = data.get("sample_rate", spec.sample_rate)
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise RequestError(f'"sample_rate" must be a positive integer, got {rate!r}')
    pcm = _array(data["pcm"], "pcm", np.float64)
    if np.any(pcm != np.round(pcm)) or np.any(pcm < -32768) or np.any(pcm > 32767):
        raise RequestError('"pcm" must hold int16 samples (integers from -32768 to 32767)')
    return _pcm_features(pcm.astype(np.int16), rate, spec)


def _array(value, key: str, dtype) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=dtype)
    except (ValueError, TypeError):
        raise RequestError(f'"{key}" must be a (nested) list of numbers of equal lengths') from None
    if array.size == 0:
        raise RequestError(f'"{key}" is empty')
    return array


def _pcm_features(pcm: np.ndarray, rate: int, spec: FeatureSpec) -> np.ndarray:
    """int16 PCM (samples,) or (batch, samples) at `rate` to features."""
    if pcm.ndim not in (1, 2) or pcm.shape[-1] == 0:
        raise RequestError(f"PCM must be (samples,) or (batch, samples), got shape {pcm.shape}")
    clips = pcm.reshape(-1, pcm.shape[-1])
    if rate != spec.sample_rate:
        floats = (clips.astype(np.float32) / 32768.0)
        clips = np.stack([audio.to_int16(audio.fit_length(
            audio.resample(clip, rate, spec.sample_rate), spec.clip_samples)) for clip in floats])
    else:
        clips = np.stack([audio.fit_length(clip, spec.clip_samples) for clip in clips])
    return features.compute(clips, spec)


def _check_features(array: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Accept (frames, coeffs), (batch, frames, coeffs) or (batch, frames, coeffs, 1)."""
    shape = tuple(array.shape)
    if array.ndim == 4 and shape[-1] == 1:
        array = array[..., 0]
    elif array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or tuple(array.shape[1:]) != spec.shape or array.shape[0] == 0:
        raise RequestError(f"features of shape {shape}: expected (batch, {spec.num_frames}, "
                           f"{spec.num_coefficients}) or ({spec.num_frames}, {spec.num_coefficients})")
    if not np.all(np.isfinite(array)):
        raise RequestError("features hold NaN or infinite values")
    return array.astype(np.float32)


def model_input(feats: np.ndarray) -> np.ndarray:
    """(batch, frames, coefficients) -> the model's (batch, frames, coefficients, 1)."""
    return feats[..., np.newaxis]


def format_response(probabilities, spec: FeatureSpec) -> dict:
    """Class probabilities (batch, n_labels) to {"predictions": [{label, probabilities}]}."""
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(spec.labels):
        raise ValueError(f"model output of shape {probs.shape} does not match the "
                         f"{len(spec.labels)} labels in the feature spec")
    return {"predictions": [
        {"label": spec.labels[int(np.argmax(row))],
         "probabilities": {label: float(p) for label, p in zip(spec.labels, row, strict=True)}}
        for row in probs]}


def tfs_request(feats: np.ndarray) -> str:
    """Features to the TensorFlow Serving REST body {"instances": [...]}."""
    return json.dumps({"instances": model_input(feats).tolist()})


def tfs_predictions(body: bytes | str) -> np.ndarray:
    """TensorFlow Serving's {"predictions": [...]} response to (batch, n_labels)."""
    try:
        predictions = json.loads(body)["predictions"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"TensorFlow Serving answered without predictions: {str(body)[:200]}") from err
    # A model with named outputs answers one {name: value} object per row.
    if predictions and isinstance(predictions[0], dict):
        if len(predictions[0]) != 1:
            raise ValueError(f"expected one model output, got {sorted(predictions[0])}")
        predictions = [next(iter(row.values())) for row in predictions]
    return np.asarray(predictions, dtype=np.float64)
