"""Inference requests in, answers out: the one request path of both hosts.

`handle(body, content_type, spec, predict)` turns a request body into
features, asks `predict` for class probabilities and returns the JSON answer.
Two hosts call it with a different `predict`:

- `keyspot serve` (keyspot.serve.app) runs the model in-process;
- the SageMaker TensorFlow Serving container runs code/inference.py from
  model.tar.gz, whose `predict` posts the tensor to TensorFlow Serving
  (keyspot.serve.tfserving).

It imports numpy, scipy and soundfile (through keyspot.audio) and nothing
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

A request that cannot be served raises RequestError, whose `status` is the
HTTP status to answer with (400, 413 or 415).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import numpy as np

from keyspot import audio, features
from keyspot.errors import without_object_reprs
from keyspot.features import FeatureSpec

WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave")
JSON_TYPE = "application/json"
NPY_TYPE = "application/x-npy"
CONTENT_TYPES = (*WAV_TYPES, JSON_TYPE, NPY_TYPE)
# Longer clips are refused rather than silently cut to the model's window:
# a 10-minute recording is not a keyword, and decoding it costs memory.
DEFAULT_MAX_CLIP_SECONDS = 10.0
# Clips in one request: a batch is for a few clips at once, not a way around
# the per-clip limits (an int16 .npy of shape (20000, 1) is 20,000 clips).
MAX_BATCH = 64


class RequestError(ValueError):
    """The request cannot be served as sent; `status` is the HTTP status to answer."""

    status = 400


class UnsupportedContentType(RequestError):
    status = 415


class TooLarge(RequestError):
    status = 413


def handle(body: bytes, content_type: str, spec: FeatureSpec,
           predict: Callable[[np.ndarray], np.ndarray], *,
           max_clip_seconds: float = DEFAULT_MAX_CLIP_SECONDS) -> dict:
    """The whole request: body -> features -> `predict` -> {"predictions": [...]}.

    `predict` takes the model input (batch, frames, coefficients, 1) float32
    and returns class probabilities (batch, n_labels).
    """
    feats = parse_request(body, content_type, spec, max_clip_seconds=max_clip_seconds)
    return format_response(predict(model_input(feats)), spec)


def parse_request(body: bytes, content_type: str, spec: FeatureSpec, *,
                  max_clip_seconds: float = DEFAULT_MAX_CLIP_SECONDS) -> np.ndarray:
    """A request body to normalised float32 features (batch, frames, coefficients)."""
    if body is None or len(body) == 0:
        raise RequestError("empty request body")
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind not in CONTENT_TYPES:
        raise UnsupportedContentType(f"unsupported content type {content_type!r}; "
                                     f"send one of {', '.join(CONTENT_TYPES)}")
    if kind in WAV_TYPES:
        try:
            samples, rate = audio.decode(bytes(body))
        except audio.AudioError as err:
            raise RequestError(f"body is not audio: {err}") from None
        # audio.decode has checked the rate, as for every file.
        _check_duration(samples.shape[0], rate, max_clip_seconds)
        # The steps of audio.load_clip, with the length checked before resampling.
        mono = audio.resample(audio.to_mono(samples), rate, spec.sample_rate)
        pcm = audio.to_int16(audio.fit_length(mono, spec.clip_samples))
        return features.compute(pcm[None, :], spec)
    if kind == NPY_TYPE:
        try:
            array = np.load(io.BytesIO(body), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise RequestError(f"body is not a .npy array: {without_object_reprs(str(err), 'the body')}") \
                from None
        except MemoryError:   # a header that declares more than the body holds
            raise RequestError("body is not a .npy array: its header declares a shape the body "
                               "does not hold") from None
        if array.dtype == np.int16:
            return _pcm_features(array, spec.sample_rate, spec, max_clip_seconds)
        if not np.issubdtype(array.dtype, np.floating):
            raise RequestError(f".npy array of dtype {array.dtype}: send int16 PCM or float features")
        return _check_features(array, spec)
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as err:   # JSONDecodeError, and integers of over 4300 digits
        raise RequestError(f"body is not JSON: {err}") from None
    except RecursionError:
        raise RequestError("body is not JSON this server reads: nested too deeply") from None
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
    return _pcm_features(pcm.astype(np.int16), rate, spec, max_clip_seconds)


def _check_rate(rate: int) -> None:
    try:
        audio.check_rate(rate, "request")
    except audio.AudioError as err:
        raise RequestError(str(err).removeprefix("request: ")) from None


def _check_batch(clips: int) -> None:
    if clips > MAX_BATCH:
        raise TooLarge(f"{clips} clips in one request; send at most {MAX_BATCH}")


def _check_duration(samples: int, rate: int, max_clip_seconds: float) -> None:
    if samples > max_clip_seconds * rate:
        raise TooLarge(f"clip is {samples / rate:.1f} s long; send at most {max_clip_seconds:g} s "
                       "(the model hears the centre of what it gets)")


def _array(value, key: str, dtype) -> np.ndarray:
    try:
        raw = np.asarray(value)
        if raw.dtype.kind not in "iuf":   # true/false, strings, ragged lists
            raise ValueError
        array = raw.astype(dtype)
    except (ValueError, TypeError, OverflowError):
        raise RequestError(f'"{key}" must be a (nested) list of numbers of equal lengths') from None
    if array.size == 0:
        raise RequestError(f'"{key}" is empty')
    return array


def _pcm_features(pcm: np.ndarray, rate: int, spec: FeatureSpec, max_clip_seconds: float) -> np.ndarray:
    """int16 PCM (samples,) or (batch, samples) at `rate` to features."""
    if pcm.ndim not in (1, 2) or pcm.shape[-1] == 0 or pcm.size == 0:
        raise RequestError(f"PCM must be (samples,) or (batch, samples), got shape {pcm.shape}")
    _check_batch(pcm.shape[0] if pcm.ndim == 2 else 1)
    _check_rate(rate)
    _check_duration(pcm.shape[-1], rate, max_clip_seconds)
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
    _check_batch(array.shape[0])
    # Checked as the model gets them: 1e300 is finite in float64, not in float32.
    with np.errstate(over="ignore"):
        array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise RequestError("features hold NaN or infinite values (as float32)")
    return array


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
