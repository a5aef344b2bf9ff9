"""A small process that loads libespeak-ng once and forks a child for each
utterance, so that every utterance starts from the same engine state.

Run by keyspot.data.tts.espeak as `python espeak_zygote.py LIBRARY DATA_PARENT`,
never imported: it uses the standard library alone, so that a fork of it
copies a few megabytes instead of a worker's numpy and scipy (about ten
times faster than forking the worker itself).

Requests arrive on stdin, one JSON object per line:
  {"voice": "en-us+f3", "text": "left.", "wpm": 175, "pitch": 50}
  {"voice": "en-us"}                      (only select the voice: a check)
Each gets one reply on stdout: a status byte (0 ok, 1 error), a 4-byte
little-endian length, then int16 samples (or a UTF-8 message).
"""

import ctypes
import json
import os
import struct
import sys

AUDIO_OUTPUT_SYNCHRONOUS = 2
RATE, VOLUME, PITCH = 1, 2, 3
POS_CHARACTER = 1
CHARS_UTF8 = 1


class Voice(ctypes.Structure):   # speak_lib.h's espeak_VOICE
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def reply(out, status: int, payload: bytes) -> None:
    out.write(struct.pack("<BI", status, len(payload)) + payload)
    out.flush()


def select(lib, name: str) -> bool:
    """As `espeak-ng -v NAME` does: a voice name, else a language (such as en-gb)."""
    if lib.espeak_SetVoiceByName(name.encode()) == 0:
        return True
    return lib.espeak_SetVoiceByProperties(ctypes.byref(Voice(languages=name.encode()))) == 0


def speak(lib, libc, request: dict) -> tuple[int, bytes]:
    if not select(lib, request["voice"]):
        return 1, f"espeak-ng has no voice {request['voice']!r}".encode()
    if "text" not in request:
        return 0, b""
    # espeak-ng's noise sources (breath, frication, flutter) draw from a
    # generator it seeds from the clock when it loads, and the build also
    # calls the C library's rand(): seed both the same for every utterance.
    lib.espeak_ng_SetRandSeed(ctypes.c_long(1))
    libc.srand(1)
    for parameter, value in ((RATE, request["wpm"]), (PITCH, request["pitch"]), (VOLUME, 100)):
        lib.espeak_SetParameter(parameter, value, 0)
    chunks = []

    @CALLBACK
    def collect(wav, count, _events):
        if count > 0 and wav:
            chunks.append(ctypes.string_at(wav, 2 * count))
        return 0

    lib.espeak_SetSynthCallback(collect)
    text = request["text"].encode()
    error = lib.espeak_Synth(text, len(text) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
    lib.espeak_Synchronize()
    if error != 0:
        return 1, f"espeak-ng failed with error {error}".encode()
    return 0, b"".join(chunks)


def main() -> int:
    library, data_parent = sys.argv[1:3]
    lib = ctypes.CDLL(library)
    libc = ctypes.CDLL(None)
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent.encode(), 0)
    out = sys.stdout.buffer
    lib.espeak_Info.restype = ctypes.c_char_p
    hello = json.dumps({"rate": rate, "version": lib.espeak_Info(None).decode() if rate > 0 else ""})
    reply(out, 0 if rate > 0 else 1, hello.encode())
    if rate <= 0:
        return 1
    for line in sys.stdin.buffer:
        request = json.loads(line)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:   # the child speaks and exits; the zygote's engine never speaks
            try:
                os.close(read)
                with os.fdopen(write, "wb") as pipe:
                    status, payload = speak(lib, libc, request)
                    pipe.write(bytes([status]) + payload)
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            answer = pipe.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or not answer:
            reply(out, 1, f"espeak-ng's process ended with wait status {status}".encode())
        else:
            reply(out, answer[0], answer[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
