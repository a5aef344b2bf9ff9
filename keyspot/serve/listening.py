"""POST /listen: the board's chain over a live stream, one piece at a time.

The page's listening mode sends the microphone's newest samples every few
hundred milliseconds; the answer holds the model's scores at each inference
those samples complete, the recognizer's detections, and the listener's
state (keyspot.listen.Listener.state), which the page sends back with the
next piece. The server keeps nothing between requests, so any worker can
take any piece, and the detections are those `keyspot listen` and the
board make: the same frontend, model and recognizer, with the parameters of
the generated firmware folder.

Request (application/json):
    {"pcm": [int16, ...], "sample_rate": 16000, "state": null | <the last answer's state>}
Answer:
    {"results": [{"time_ms": t, "scores": [0..255 per label]}, ...],
     "detections": [{"time_s", "label", "score", "score_255"}, ...], "state": {...}}
"""

from __future__ import annotations

import json

import numpy as np

from keyspot.features import FeatureSpec
from keyspot.listen import Listener
from keyspot.recognizer import RecognizerParams
from keyspot.serve.handler import JSON_TYPE, RequestError, UnsupportedContentType

# A piece is the audio since the last one: a page that fell behind sends more,
# but never minutes of it.
MAX_PIECE_SECONDS = 5.0


def answer(body: bytes, content_type: str, spec: FeatureSpec, model, params: RecognizerParams) -> dict:
    if content_type.split(";")[0].strip().lower() != JSON_TYPE:
        raise UnsupportedContentType(f"/listen takes {JSON_TYPE}, not {content_type or 'no Content-Type'}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestError(f"body is not JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("pcm"), list):
        raise RequestError('expected {"pcm": [int16, ...], "sample_rate": n, "state": ...}')
    rate = data.get("sample_rate", spec.sample_rate)
    if rate != spec.sample_rate:
        raise RequestError(f"sample_rate {rate!r}: /listen takes the model's {spec.sample_rate} Hz; "
                           "resample before sending")
    if len(data["pcm"]) > MAX_PIECE_SECONDS * spec.sample_rate:
        raise RequestError(f"{len(data['pcm'])} samples: send at most {MAX_PIECE_SECONDS:g} s at a time")
    try:
        pcm = np.asarray(data["pcm"], dtype=np.float64)
    except (TypeError, ValueError):
        raise RequestError("pcm: expected a list of int16 samples") from None
    if pcm.ndim != 1 or not np.all(np.isfinite(pcm)) or np.any((pcm < -32768) | (pcm > 32767)) \
            or np.any(pcm != np.round(pcm)):
        raise RequestError("pcm: expected a flat list of int16 samples (-32768..32767)")
    listener = Listener(spec, model, params)
    if data.get("state") is not None:
        try:
            listener.restore(data["state"])
        except ValueError as err:
            raise RequestError(f"state: {err}; start again with \"state\": null") from None
    times, scores = listener.scores(pcm.astype(np.int16))
    try:
        detections = listener.detections(times, scores)
    except ValueError as err:   # a state whose recognizer is ahead of its frames
        raise RequestError(f"state: {err}; start again with \"state\": null") from None
    return {"results": [{"time_ms": int(t), "scores": row.tolist()} for t, row in zip(times, scores, strict=True)],
            "detections": [{**d.as_dict(), "time_ms": d.time_ms} for d in detections],
            "state": listener.state()}
