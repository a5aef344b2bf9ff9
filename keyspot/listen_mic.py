"""`keyspot listen --mic`: the board's chain on the default microphone, live.

PortAudio (through sounddevice) delivers blocks of int16 samples at the
feature spec's rate; a `Listener` turns them into detections as they come.
"""

from __future__ import annotations

import json
import queue
import sys

import numpy as np

from keyspot.errors import UserError
from keyspot.features import FeatureSpec
from keyspot.listen import Listener
from keyspot.recognizer import RecognizerParams

# Blocks of 100 ms: one inference's worth of new audio.
BLOCK_MS = 100


class MicError(UserError, RuntimeError):
    """No microphone to listen to."""


def default_input(sounddevice) -> dict:
    """The default input device, or MicError saying why there is none."""
    try:
        device = sounddevice.query_devices(kind="input")
    except (sounddevice.PortAudioError, ValueError) as err:
        raise MicError(f"--mic: no sound input device ({err}); listen to a recording instead: "
                       "keyspot listen FILE.wav") from None
    if not device or device.get("max_input_channels", 0) < 1:
        raise MicError("--mic: no sound input device; listen to a recording instead: keyspot listen FILE.wav")
    return device


def import_sounddevice():
    try:
        import sounddevice
    except (ImportError, OSError) as err:
        # sounddevice loads the PortAudio library when imported.
        raise MicError(f"--mic needs PortAudio ({err}); on Debian: sudo apt-get install libportaudio2") from None
    return sounddevice


def listen_mic(spec: FeatureSpec, model, params: RecognizerParams, as_json: bool = False) -> int:
    """Print detections until Ctrl-C; 0 when stopped so."""
    sounddevice = import_sounddevice()
    device = default_input(sounddevice)
    listener = Listener(spec, model, params)
    blocks: queue.Queue[np.ndarray] = queue.Queue()

    def arrived(data, frames, time, status):  # PortAudio's thread: hand the block over, no more
        blocks.put(data[:, 0].copy())

    print(f"listening on {device['name']} at {spec.sample_rate} Hz; Ctrl-C stops", file=sys.stderr)
    heard_ms = 0
    try:
        with sounddevice.InputStream(samplerate=spec.sample_rate, channels=1, dtype="int16",
                                     blocksize=spec.sample_rate * BLOCK_MS // 1000, callback=arrived):
            while True:
                block = blocks.get()
                heard_ms += len(block) * 1000 // spec.sample_rate
                for d in listener.feed(block):
                    if as_json:
                        print(json.dumps(d.as_dict()), flush=True)
                    else:
                        print(f"{d.time_ms / 1000:8.2f} s\t{d.label}\t{d.score / 256:.3f}", flush=True)
    except KeyboardInterrupt:
        print(f"stopped after {heard_ms / 1000:.1f} s", file=sys.stderr)
        return 0
    except sounddevice.PortAudioError as err:
        raise MicError(f"--mic: the input stream failed: {err}") from None
