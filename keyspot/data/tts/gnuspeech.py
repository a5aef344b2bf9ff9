"""GnuSpeech, an articulatory synthesiser: speech from a model of the vocal
tract as a tube driven by a glottal source, not from recorded or
formant-rule speech. Its voices differ in the tract's length and shape and
in the glottal pulse, as people do.

The module is the npm package @echogarden/gnuspeech-wasm at a pinned version:
`python -m keyspot.data.tts.install` (run by `make setup`) downloads it
once, checks its SHA-256 and keeps gnuspeech.wasm in the environment; its
English dictionary, rules and voices are embedded in the module. It is an
Emscripten build that expects a JavaScript host. keyspot is that host here,
in Python on wasmtime: it answers the few system calls the module makes with
an in-memory file system, no clock and no entropy. So the same text and
prosody give the same bits on every machine, and each utterance runs in a
fresh instance, with no state carried from one to the next.
"""

from __future__ import annotations

import functools
import struct
import sys
from pathlib import Path

import numpy as np

from keyspot.data.tts.base import TTSError, compile_wasm, decode_wav, run_wasm

PACKAGE = "@echogarden/gnuspeech-wasm"
VERSION = "0.3.0"
TARBALL_URL = f"https://registry.npmjs.org/{PACKAGE}/-/gnuspeech-wasm-{VERSION}.tgz"
TARBALL_SHA256 = "7faeb0fd9001ce8995c5e3c033ba23149564943083479449c55068926f1c148d"
WASM_SHA256 = "4dab9797b10e6b119fef2c694b8007099482499fc6dbdd76b1c60cbeeb227bd8"
# The voice files embedded in the module (data/en/voice_<name>.txt).
VOICES = ("male", "female", "large_child", "small_child", "baby")
DATA_DIR = "/data/en"
# GnuSpeech's own default pitch offset, in semitones; keyspot's pitch scale
# (espeak-ng's 0-99, 50 neutral) moves it by up to half an octave either way,
# one octave over the whole scale as for flite and Pico.
PITCH_OFFSET_SEMITONES = -4.0

# Emscripten's errno values (not Linux's).
_EBADF, _ENOENT, _ENOTTY = 8, 44, 59
_O_CREAT, _O_TRUNC = 0o100, 0o1000


def wasm_path() -> Path:
    return Path(sys.prefix) / "share" / "keyspot" / f"gnuspeech-wasm-{VERSION}" / "gnuspeech.wasm"


def program() -> str:
    return f"GnuSpeech ({PACKAGE} {VERSION}, WebAssembly)"


def check_installed() -> None:
    _module()


def check_voice(name: str) -> None:
    if name not in VOICES:
        raise ValueError(f"GnuSpeech has no voice {name!r}; it has {', '.join(VOICES)}")


@functools.cache
def _module():
    """wasmtime, an engine and the compiled module, once per process tree."""
    return compile_wasm("GnuSpeech", wasm_path())


def control_model(voice: str, tempo: float, pitch_offset: float) -> str:
    """GnuSpeech's control-model configuration (trm_control_model.txt): the
    voice, the tempo and the pitch; intonation as GnuSpeech has it by default."""
    settings = {
        "control_rate": 250.0,            # Hz, of the articulatory parameters
        "voice_name": voice,
        "tempo": round(tempo, 4),
        "pitch_offset": round(pitch_offset, 4),   # semitones
        "drift_deviation": 0.5,           # semitones
        "drift_lowpass_cutoff": 0.5,      # Hz
        "micro_intonation": 1,
        "macro_intonation": 1,
        "intonation_drift": 1,
        "random_intonation": 1,
        "notional_pitch": 2.0,
        "pretonic_range": -2.0,
        "pretonic_lift": 4.0,
        "tonic_range": -8.0,
        "tonic_movement": 4.0,
        "dictionary_1_file": "none",
        "dictionary_2_file": "none",
        "dictionary_3_file": "MainDictionary.txt",
    }
    return "".join(f"{key} = {value}\n" for key, value in settings.items())


def synthesize(name: str, text: str, speed: float, pitch: float) -> tuple[np.ndarray, int]:
    """`pitch` on espeak-ng's 0-99 scale (50 neutral); `speed` relative."""
    offset = PITCH_OFFSET_SEMITONES + 12.0 * (pitch - 50.0) / 80.0
    _module()   # compiled here, before run_wasm may fork
    return decode_wav("GnuSpeech", run_wasm(_speak, text, control_model(name, speed, offset)))


def _speak(text: str, config: str) -> bytes:
    return _Instance().speak(text, config)


class _Instance:
    """One instance of the module, with the host functions it imports.

    The module imports them under minified names; which is which comes from
    the Emscripten glue of the pinned version (gnuspeech.js's wasmImports).
    """

    def __init__(self):
        wasmtime, engine, module = _module()
        self.store = wasmtime.Store(engine)
        self.files: dict[str, bytearray] = {}   # the in-memory file system
        self.open: dict[int, list] = {}         # fd -> [path, position]
        i32 = wasmtime.ValType.i32()
        host = {
            "a": (3, 0, self._cxa_throw), "b": (4, 0, self._assert_fail), "c": (1, 1, self._fd_close),
            "d": (4, 1, self._fd_write), "e": (3, 1, self._fcntl), "f": (4, 1, self._fd_read),
            "g": (3, 1, self._ioctl), "h": (4, 1, self._openat), "i": (3, 0, self._memcpy),
            "j": (1, 0, self._load_embedded_files), "k": (5, 1, self._fd_seek), "l": (2, 1, self._random_get),
            "m": (4, 0, self._tzset), "n": (2, 1, self._environ_get), "o": (2, 1, self._environ_sizes_get),
            "p": (0, 0, self._abort), "q": (1, 1, self._resize_heap),
        }
        imports = []
        for item in module.imports:
            params, results, fn = host[item.name]
            imports.append(wasmtime.Func(self.store, wasmtime.FuncType([i32] * params, [i32] * results), fn))
        exports = wasmtime.Instance(self.store, module, imports).exports(self.store)
        self.memory, self.malloc, self.synthesize_to_file = exports["r"], exports["v"], exports["w"]
        self._trap = wasmtime.Trap
        exports["s"](self.store)   # static constructors; they load the embedded files

    def speak(self, text: str, config: str) -> bytes:
        self.files[f"{DATA_DIR}/trm_control_model.txt"] = bytearray(config.encode())
        args = [self._string(s) for s in (text, "/out.wav", DATA_DIR, "/out-params.txt")]
        try:
            self.synthesize_to_file(self.store, *args, 0)
        except self._trap as trap:
            raise TTSError(f"GnuSpeech failed on {text!r}: {str(trap).splitlines()[0]}") from None
        if not self.files.get("/out.wav"):
            raise TTSError(f"GnuSpeech wrote no audio for {text!r}")
        return bytes(self.files["/out.wav"])

    # memory
    def _read(self, address: int, size: int) -> bytes:
        return bytes(self.memory.read(self.store, address, address + size))

    def _write(self, address: int, data: bytes) -> None:
        self.memory.write(self.store, data, address)

    def _c_string(self, address: int) -> str:
        out = bytearray()
        while True:
            chunk = self._read(address, 64)
            end = chunk.find(b"\0")
            if end >= 0:
                return (out + chunk[:end]).decode(errors="replace")
            out += chunk
            address += 64

    def _string(self, text: str) -> int:
        data = text.encode() + b"\0"
        address = self.malloc(self.store, len(data))
        self._write(address, data)
        return address

    # failures: raised out of the call into the module
    def _cxa_throw(self, exception, kind, destructor):
        raise TTSError("GnuSpeech threw a C++ exception")

    def _assert_fail(self, condition, file, line, function):
        raise TTSError(f"GnuSpeech: assertion {self._c_string(condition)!r} failed "
                       f"({self._c_string(file)}:{line})")

    def _abort(self):
        raise TTSError("GnuSpeech aborted")

    # the runtime
    def _memcpy(self, dest, src, size):
        self._write(dest, self._read(src, size))

    def _resize_heap(self, requested):
        grow = -(-(requested - self.memory.data_len(self.store)) // 65536)
        try:
            self.memory.grow(self.store, grow)
        except Exception:
            return 0
        return 1

    def _tzset(self, timezone, daylight, std_name, dst_name):
        pass   # UTC, no zone names: nothing to write

    def _environ_get(self, environ, buffer):
        return 0

    def _environ_sizes_get(self, count, size):
        self._write(count, struct.pack("<I", 0))
        self._write(size, struct.pack("<I", 0))
        return 0

    def _random_get(self, buffer, size):
        # No entropy: zeros, so that every run computes the same.
        self._write(buffer, bytes(size))
        return 0

    # the file system
    def _load_embedded_files(self, table):
        while True:
            name, size, content = struct.unpack("<III", self._read(table, 12))
            table += 12
            self.files[self._c_string(name)] = bytearray(self._read(content, size))
            if not struct.unpack("<I", self._read(table, 4))[0]:
                return

    def _openat(self, dirfd, path, flags, varargs):
        name = self._c_string(path)
        name = name if name.startswith("/") else "/" + name.removeprefix("./")
        if name not in self.files:
            if not flags & _O_CREAT:
                return -_ENOENT
            self.files[name] = bytearray()
        if flags & _O_TRUNC:
            self.files[name] = bytearray()
        fd = max(self.open, default=2) + 1
        self.open[fd] = [name, 0]
        return fd

    def _fcntl(self, fd, command, varargs):
        return 0

    def _ioctl(self, fd, request, varargs):
        return -_ENOTTY   # no terminals

    def _fd_close(self, fd):
        self.open.pop(fd, None)
        return 0

    def _buffers(self, iov, count):
        return [struct.unpack("<II", self._read(iov + 8 * k, 8)) for k in range(count)]

    def _fd_write(self, fd, iov, count, written):
        total = 0
        for base, size in self._buffers(iov, count):
            if fd in self.open:   # stdout and stderr (1, 2) are dropped
                name, position = self.open[fd]
                self.files[name][position:position + size] = self._read(base, size)
                self.open[fd][1] = position + size
            elif fd not in (1, 2):
                return _EBADF
            total += size
        self._write(written, struct.pack("<I", total))
        return 0

    def _fd_read(self, fd, iov, count, read):
        if fd not in self.open:
            return _EBADF
        name, position = self.open[fd]
        total = 0
        for base, size in self._buffers(iov, count):
            data = bytes(self.files[name][position:position + size])
            self._write(base, data)
            position += len(data)
            total += len(data)
            if len(data) < size:
                break
        self.open[fd][1] = position
        self._write(read, struct.pack("<I", total))
        return 0

    def _fd_seek(self, fd, offset_low, offset_high, whence, new_offset):
        if fd not in self.open:
            return _EBADF
        offset = struct.unpack("<q", struct.pack("<Ii", offset_low & 0xFFFFFFFF, offset_high))[0]
        name, position = self.open[fd]
        position = {0: 0, 1: position, 2: len(self.files[name])}[whence] + offset
        self.open[fd][1] = position
        self._write(new_offset, struct.pack("<q", position))
        return 0
