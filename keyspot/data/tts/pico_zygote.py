"""A small process that loads SVOX Pico (ttspico's ctts) and nothing else,
and forks a child for each utterance, so that every utterance starts from an
engine that never spoke.

Run by keyspot.data.tts.pico as `python pico_zygote.py LANGUAGE_DIR`, never
imported: beside the many libraries of a worker or a test process, Pico's
native code has crashed; here it is alone. Protocol as espeak_zygote.py:
one JSON request per line ({"voice": "en-US", "text": ..., "rate": 100,
"pitch": 100}, or {"voice": ...} alone to load it), one reply each: a status
byte, a 4-byte little-endian length, then int16 samples or a message.
"""

import json
import os
import struct
import sys


def reply(out, status: int, payload: bytes) -> None:
    out.write(struct.pack("<BI", status, len(payload)) + payload)
    out.flush()


def speak(ctts, engine, text: str) -> bytes:
    chunks = []
    ctts.engine_speak(engine, text, lambda _format, data, _final: chunks.append(data) or True)
    return b"".join(chunks)


def main() -> int:
    language_dir = sys.argv[1]
    import ctts
    engines = {}
    out = sys.stdout.buffer
    reply(out, 0, b"{}")
    for line in sys.stdin.buffer:
        request = json.loads(line)
        voice = request["voice"]
        if voice not in engines:
            try:
                engines[voice] = ctts.engine_create(language_dir=language_dir, language=voice)
            except RuntimeError as err:
                reply(out, 1, f"cannot load the voice {voice!r} from {language_dir} ({err})".encode())
                continue
        if "text" not in request:
            reply(out, 0, b"")
            continue
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:   # the child speaks and exits; the zygote's engines never speak
            try:
                os.close(read)
                engine = engines[voice]
                ctts.engine_set_property(engine, "rate", request["rate"])
                ctts.engine_set_property(engine, "pitch", request["pitch"])
                pcm = speak(ctts, engine, request["text"])
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(bytes([0 if pcm else 1]) + (pcm or b"SVOX Pico returned no audio"))
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            answer = pipe.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or not answer:
            reply(out, 1, f"SVOX Pico's process ended with wait status {status}".encode())
        else:
            reply(out, answer[0], answer[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
