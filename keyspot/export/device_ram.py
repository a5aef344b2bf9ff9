"""The RAM the exported model and its audio chain hold on the board.

The PSoC 6 application keeps every buffer of keyspot's chain in static
storage, so its RAM is known at export time, without linking: the model's
arena (TensorFlow Lite Micro's tensor arena, or the C engine's activation
buffers and scratch), the microphone's blocks and ring, the frontend's
window and work buffers, the model input and the recognizer's state.

Each figure mirrors a declaration in firmware/ (the C symbol and its file
are kept beside it); tests/test_psoc6_firmware.py links the application
for the kit and checks every figure against the symbol's size in the
image, and that these buffers are all but a little of the application's
own RAM. The board libraries, TFLite Micro's interpreter object and the C
runtime come on top: `make firmware` reports the whole image
(firmware/psoc6/build/size.json).
"""

from __future__ import annotations

import dataclasses

from keyspot.export import c_engine
from keyspot.features import FeatureSpec

# firmware/psoc6/source/audio_provider.c: the PDM/PCM driver fills one of two
# 20 ms blocks while the other is copied into a ring of two seconds.
PDM_BLOCK_SAMPLES = 320
RING_SECONDS = 2
# firmware/core/recognizer.h (the application does not override them).
RECOGNIZER_MAX_RESULTS = 64
RECOGNIZER_MAX_LABELS = 64

INT16, INT32, FLOAT = 2, 4, 4


@dataclasses.dataclass(frozen=True)
class Buffer:
    name: str      # what it holds, for a reader
    symbol: str    # the C symbol (a function's static gets a numeric suffix)
    source: str    # the file, under firmware/, that declares it
    bytes: int


def recognizer_bytes() -> int:
    """sizeof(keyspot_recognizer) under the Arm EABI (firmware/core/recognizer.h)."""
    params = 4 * INT32 + 8                 # four int32 fields and the uint64 ignore mask
    size = params + 3 * INT32              # num_labels, head, count
    size += RECOGNIZER_MAX_RESULTS * INT32                         # times
    size += RECOGNIZER_MAX_RESULTS * RECOGNIZER_MAX_LABELS         # scores, uint8
    size += 3 * INT32                      # has_detection, last_detection_ms, last_time_ms
    return -(-size // 8) * 8               # the uint64 makes the struct 8-aligned


def chain_buffers(spec: FeatureSpec) -> list[Buffer]:
    """The audio chain's buffers: the same whichever engine runs the model."""
    app, core = "psoc6/source", "core"
    fft_bins = spec.fft_size // 2 + 1
    return [
        Buffer("microphone blocks", "blocks", f"{app}/audio_provider.c", 2 * PDM_BLOCK_SAMPLES * INT16),
        Buffer("audio ring", "ring", f"{app}/audio_provider.c", RING_SECONDS * spec.sample_rate * INT16),
        Buffer("frame window", "window", f"{app}/feature_provider.c", spec.window_samples * INT16),
        Buffer("frontend: frame", "s_frame", f"{core}/frontend.c", spec.fft_size * FLOAT),
        Buffer("frontend: power spectrum", "s_power", f"{core}/frontend.c", fft_bins * FLOAT),
        Buffer("frontend: log mel", "s_log_mel", f"{core}/frontend.c", spec.mel_bins * FLOAT),
        Buffer("model input", "features", f"{app}/main.c", spec.num_frames * spec.num_coefficients),
        Buffer("recognizer", "recognizer", f"{app}/main.c", recognizer_bytes()),
    ]


def model_buffers(engine: str, arena_bytes: int, engine_buffers: tuple[int, int] = (0, 0),
                  engine_scratch: int = 0) -> list[Buffer]:
    """The model's working memory on the board, for export.engine."""
    if engine == "tflm":
        return [Buffer("tensor arena", "tensor_arena", "psoc6/source/model_runner.cpp", arena_bytes)]
    generated = "psoc6/source/generated/engine_model.c"
    out = [Buffer("engine buffer A", "g_engine_buffer_a", generated, c_engine.declared_bytes(engine_buffers[0])),
           Buffer("engine buffer B", "g_engine_buffer_b", generated, c_engine.declared_bytes(engine_buffers[1]))]
    if engine_scratch:
        out.append(Buffer("engine scratch", "g_engine_scratch", generated, engine_scratch))
    return out


def report(engine: str, model_bytes: int, model: list[Buffer], chain: list[Buffer]) -> dict:
    """reports/firmware.json: the engine c-export wrote the model for, the
    flash its data takes (the flatbuffer, or the C engine's constants), and
    the RAM of its buffers and the chain's."""
    buffers = model + chain
    return {
        "engine": engine,
        "model_bytes": model_bytes,
        "model_ram_bytes": sum(b.bytes for b in model),
        "ram_bytes": sum(b.bytes for b in buffers),
        "ram": [dataclasses.asdict(b) for b in buffers],
    }
