"""POST /listen of `keyspot serve`: a stream sent in pieces, the state going
back and forth, gives the detections `keyspot listen`'s chain gives the
whole stream; the recognizer is the generated firmware folder's. The page's
listening mode is tested in headless Chromium in tests/test_web_page.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_serve import LABELS, PITCHES, Server, build_workdir, tone

from keyspot.export.c_model import recognizer_config_h
from keyspot.listen import Listener, TFLiteModel
from keyspot.recognizer import from_header
from keyspot.schema import Recognizer

# Short words need a short window: a 2 s tone fills a 1 s input for about a second.
FIRMWARE = Recognizer(average_window_ms=500, detection_threshold=150, suppression_ms=1500, minimum_count=3)


def tone_stream(rate: int = 16000) -> np.ndarray:
    """_silence_'s pitch, then "yes", "no", "yes", each 2 s, between 2 s of it."""
    parts = [tone(rate, 2.0, PITCHES["_silence_"], 1)]
    for k, word in enumerate(("yes", "no", "yes")):
        parts += [tone(rate, 2.0, PITCHES[word], 10 + k), tone(rate, 2.0, PITCHES["_silence_"], 20 + k)]
    return np.concatenate(parts)


def write_firmware(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "recognizer_config.h").write_text(recognizer_config_h("", LABELS, FIRMWARE))
    return folder


@pytest.fixture(scope="module")
def listening(tmp_path_factory):
    work = build_workdir(tmp_path_factory.mktemp("listen"))
    root = work["root"]
    firmware = write_firmware(root / "generated")
    srv = Server(root, "--model", str(root / "float.tflite"), "--firmware", str(firmware), workers=2)
    yield srv, root, firmware
    srv.stop()


def _listen(srv, pcm, state, rate=16000) -> tuple[int, dict]:
    status, body, _ = srv.request("POST", "/listen", json.dumps(
        {"pcm": [int(v) for v in pcm], "sample_rate": rate, "state": state}), "application/json")
    return status, json.loads(body)


def test_a_stream_in_pieces_is_heard_as_the_whole_stream(listening):
    srv, root, firmware = listening
    from keyspot.features import FeatureSpec

    spec = FeatureSpec.load(root / "data/features/spec.json")
    pcm = tone_stream()
    whole = Listener(spec, TFLiteModel.load((root / "float.tflite").read_bytes(), spec), from_header(firmware))
    expected = [(d.time_ms, d.label) for d in whole.feed(pcm)]
    assert [label for _, label in expected] == ["yes", "no", "yes"]

    status, body, _ = srv.request("GET", "/info")
    info = json.loads(body)
    assert info["listening"] is True and info["recognizer"]["source"] == str(firmware / "recognizer_config.h")
    assert info["recognizer"]["detection_threshold"] == FIRMWARE.detection_threshold
    state, heard, times = None, [], []
    rng = np.random.default_rng(0)
    at = 0
    while at < len(pcm):   # pieces of 50 ms to 1 s, as a page that sometimes falls behind sends
        size = int(rng.integers(800, 16000))
        status, answer = _listen(srv, pcm[at:at + size], state)
        assert status == 200, answer
        state = answer["state"]
        heard += [(d["time_ms"], d["label"]) for d in answer["detections"]]
        times += [r["time_ms"] for r in answer["results"]]
        at += size
    assert heard == expected
    assert times == list(range(110, times[-1] + 1, 100))   # every inference, once, in order


def test_listen_refuses_bad_pieces_in_one_line(listening):
    srv, _, _ = listening
    status, body, _ = srv.request("POST", "/listen", b"\x00\x01", "audio/wav")
    assert status == 415 and "application/json" in json.loads(body)["error"]
    status, answer = _listen(srv, [0] * 100, None, rate=44100)
    assert status == 400 and "16000 Hz" in answer["error"]
    status, answer = _listen(srv, [40000], None)
    assert status == 400 and "int16" in answer["error"]
    status, answer = _listen(srv, [0] * 100, {"pending": [], "next_frame": -1})
    assert status == 400 and answer["error"].startswith("state: ") and '"state": null' in answer["error"]
    # A recognizer ahead of the stream's frames: time would go backwards.
    status, answer = _listen(srv, [0] * 16000, None)
    ahead = {**answer["state"], "recognizer": {**answer["state"]["recognizer"], "last_time_ms": 10 ** 9,
                                               "times": [10 ** 9], "scores": [[0] * len(LABELS)]}}
    status, answer = _listen(srv, [0] * 16000, ahead)
    assert status == 400 and "time going backwards" in answer["error"], answer
    # Still serving.
    assert _listen(srv, [0] * 16000, None)[0] == 200


def test_without_a_generated_folder_the_firmware_defaults_say_so(tmp_path_factory):
    work = build_workdir(tmp_path_factory.mktemp("defaults"))
    root = work["root"]
    srv = Server(root, "--model", str(root / "float.tflite"), "--firmware", str(root / "nowhere"), workers=1)
    try:
        info = json.loads(srv.request("GET", "/info")[1])
        assert info["recognizer"]["source"].startswith("defaults: no ")
        assert info["recognizer"]["detection_threshold"] == Recognizer().detection_threshold
        assert "recognizer for /listen from defaults" in srv.log.read_text()
    finally:
        srv.stop()
