"""What the firmware tests and bench/engine_report.py share: untrained
models with the int8 ranges of trained ones, test clips as C, and the
board's model runner built for QEMU's Cortex-M4F (mps2-an386) and run under
`-icount`, where QEMU's clock advances 2**shift ns per guest instruction.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

ICOUNT_SHIFT = 6
OPTIMISATION = "-O2"   # CFLAGS of both builds, as firmware/core/Makefile defaults to


class BoardError(RuntimeError):
    """A build or a run of the board image failed, or printed no result."""


def run_tool(cmd: list, what: str, **kwargs) -> str:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise BoardError(f"{what} failed ({result.returncode}): {(result.stdout + result.stderr)[-2000:]}")
    return result.stdout


def calibrate_random_weights(model, x: np.ndarray, rng) -> None:
    """Give an untrained Keras model weights whose layers and scores follow
    its input as a trained model's do, so that its int8 conversion has
    sensible ranges: each BatchNorm normalises with the statistics of its
    input on `x` and draws its scale and offset at random (so the folded
    per-channel scales differ); the last dense layer sees standardised
    features. `x`: (examples, frames, coefficients) features."""
    import keras

    def inputs_of(layer) -> np.ndarray:
        return keras.Model(model.inputs, layer.input).predict(x[..., None], verbose=0)

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            a = inputs_of(layer).reshape(-1, layer.gamma.shape[0])
            n = a.shape[1]
            layer.set_weights([rng.uniform(0.5, 2.0, n), rng.normal(0, 0.5, n), a.mean(0), a.var(0) + 1e-3])
    last = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
    f = inputs_of(last).reshape(len(x), -1)
    mean, std = f.mean(0), np.maximum(f.std(0), 1e-3)
    kernel = rng.normal(0, 3 / np.sqrt(f.shape[1]), (f.shape[1], last.units)) / std[:, None]
    last.set_weights([kernel, -mean @ kernel])


def write_test_clips(folder: Path, pcm: np.ndarray, written_by: str) -> None:
    """test_clips.h/.c: `pcm` (clips of the frontend's length) as int16
    arrays for the firmware images that run the whole chain."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_clips.h").write_text(
        f"/* Written by {written_by}. */\n#include <stdint.h>\n"
        '#include "feature_config.h"\n'
        f"#define KEYSPOT_TEST_CLIPS {len(pcm)}\n"
        "extern const int16_t g_test_clips[KEYSPOT_TEST_CLIPS][KEYSPOT_CLIP_SAMPLES];\n")
    rows = ",\n".join("  {" + ", ".join(str(int(v)) for v in clip.astype(np.int16)) + "}" for clip in pcm)
    (folder / "test_clips.c").write_text(
        '#include "test_clips.h"\n'
        f"const int16_t g_test_clips[KEYSPOT_TEST_CLIPS][KEYSPOT_CLIP_SAMPLES] = {{\n{rows}\n}};\n")


def instructions_per_inference(qemu_output: str, shift: int = ICOUNT_SHIFT) -> int:
    """From the QEMU image's `counter HZ empty T` and `clip N ticks ... engine T`
    lines: the mean instructions of one keyspot_engine_invoke()."""
    counter = re.search(r"^counter (\d+) empty (\d+)$", qemu_output, re.M)
    ticks = [int(t) for t in re.findall(r"^clip \d+ ticks frontend \d+ engine (\d+)$", qemu_output, re.M)]
    if counter is None or not ticks:
        raise BoardError(f"no timing lines in the QEMU output: {qemu_output[-500:]}")
    hz, empty = int(counter.group(1)), int(counter.group(2))
    ns_per_tick = 1e9 / hz
    return round(np.mean([(t - empty) * ns_per_tick / (1 << shift) for t in ticks]))


def board_image_run(repo: Path, generated: Path, clips: Path, build: Path, what: str) -> str:
    """Build firmware/psoc6's QEMU image (the board's model runner) against
    `generated` and run it on `clips` under -icount; its output."""
    make = ["make", "-s", "-C", repo / "firmware/psoc6", "-f", "gcc.mk", f"BUILD={build}",
            f"GENERATED={generated}", f"CLIPS={clips}", f"QEMU_CFLAGS={OPTIMISATION}"]
    run_tool([*make, "qemu"], f"{what}: make -f gcc.mk qemu")
    return run_tool(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                 "-semihosting-config", "enable=on,target=native", "-icount", f"shift={ICOUNT_SHIFT}",
                 "-kernel", build / "qemu/keyspot-qemu.elf"], f"{what}: QEMU", timeout=600)


def scores_lines(qemu_output: str) -> list[str]:
    return re.findall(r"^clip \d+ scores [0-9a-f]+$", qemu_output, re.M)


def arena_used(qemu_output: str) -> tuple[int, int]:
    """(bytes used, bytes there) from the board image's `arena used U of N` line."""
    m = re.search(r"^arena used (\d+) of (\d+)$", qemu_output, re.M)
    if m is None:
        raise BoardError(f"no 'arena used' line in the QEMU output: {qemu_output[-500:]}")
    return int(m.group(1)), int(m.group(2))


def espeak_wav(wav: Path, text: str, voice: str = "en", wpm: int = 175) -> Path:
    """`text` spoken by keyspot's pinned espeak-ng into a 22.05 kHz WAV file,
    as `espeak-ng -v VOICE -s WPM -w WAV TEXT` would write it."""
    from keyspot import audio
    from keyspot.data import tts

    samples, rate = tts.synthesize(tts.Voice("espeak", voice), text, wpm / 175.0, 50.0)
    audio.write_wav(Path(wav), audio.to_int16(samples), rate)
    return Path(wav)
