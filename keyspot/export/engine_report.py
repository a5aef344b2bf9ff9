"""Flash, RAM and instructions per inference of keyspot's C engine and of
TensorFlow Lite Micro with CMSIS-NN for every registered model, on the same
Cortex-M4F under QEMU.

    python -m keyspot.export.engine_report                 # every conf/model/*.yaml
    python -m keyspot.export.engine_report ds_cnn_s cnn    # some of them
    make -C firmware/core engine-report                    # the same, from the firmware tree

Each model is built at its configured size with random weights (sizes and
instruction counts do not depend on training), converted to int8 as the
quantize stage does, and measured:

- TFLM model and arena: the .tflite's bytes; the smallest arena TFLite Micro
  accepts (keyspot.quantize.tflm_arena_bytes, no headroom).
- engine flash and RAM: what one inference adds to a linked Cortex-M4F image
  (`make engine-size`: the same program with and without the engine,
  arm-none-eabi-size): kernels, weights and constants, libgcc's double
  helpers; RAM is the two activation buffers and the convolutions' window
  scratch.
- instructions: the board's model runner on QEMU's mps2-an386
  (firmware/psoc6/gcc.mk `qemu`: source/model_runner.cpp with Infineon's
  prebuilt TFLite Micro and its CMSIS-NN kernels, or source/model_runner_c.c
  with the C engine; one main, the same clips, the same compiler flags) runs
  two clips under `qemu-system-arm -icount shift=6`, where QEMU's clock
  advances 64 ns per guest instruction; the board's 25 MHz FPGA counter
  around model_runner_invoke() then counts instructions (ticks * 40 / 64),
  exactly up to one tick. No SysTick, no TCG plugin. The same run gives the
  arena TFLite Micro uses on the target (arena_used_bytes()) and checks that
  both runtimes give the same int8 scores.

The TFLite Micro image needs the libraries of firmware/psoc6/deps
(firmware/psoc6/getlibs.sh fetches them into firmware/mtb_shared).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from keyspot.labels import SILENCE, UNKNOWN

ICOUNT_SHIFT = 6
OPTIMISATION = "-O2"   # CFLAGS of both builds, as firmware/core/Makefile defaults to
CLIPS = 2
SPARE_ARENA_BYTES = 512 * 1024
TOOLS = ("make", "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")


class ReportError(RuntimeError):
    """A tool is missing or a build or run failed."""


@dataclasses.dataclass(frozen=True)
class Row:
    model: str
    parameters: int            # int8 weights
    tflm_model_bytes: int
    tflm_arena_bytes: int | None   # None where TFLite Micro cannot load the model
    engine_flash_bytes: int    # linked: code + constants + libgcc helpers
    engine_constant_bytes: int
    engine_ram_bytes: int      # linked .bss: the activation buffers
    instructions: int          # C engine, per inference, under QEMU
    macs: int = 0              # multiply-accumulates per inference
    tflm_instructions: int = 0           # TFLite Micro with CMSIS-NN, per inference, under QEMU
    tflm_arena_used_target: int = 0      # arena_used_bytes() on the Cortex-M4F

    @property
    def speedup(self) -> float:
        """TFLite Micro's instructions over the C engine's: above 1, the engine is faster."""
        return self.tflm_instructions / self.instructions

    @property
    def ram_saving(self) -> float | None:
        return None if self.tflm_arena_bytes is None else 1 - self.engine_ram_bytes / self.tflm_arena_bytes


def _run(cmd: list, what: str, **kwargs) -> str:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise ReportError(f"{what} failed ({result.returncode}): {(result.stdout + result.stderr)[-2000:]}")
    return result.stdout


def registered_models(repo: Path) -> list[str]:
    return sorted(p.stem for p in (repo / "conf/model").glob("*.yaml"))


def _params(repo: Path, name: str):
    from keyspot.compose import compose
    from keyspot.params import from_dict

    return from_dict(compose(repo / "conf", [f"model={name}"]))


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


def int8_model(repo: Path, name: str, work: Path, seed: int = 0):
    """The model of conf/model/<name>.yaml at its size, calibrated random
    weights, as int8 by keyspot.quantize.convert; its feature spec, its
    number of parameters and of multiply-accumulates."""
    import keras

    from keyspot import models
    from keyspot.features import FeatureSpec, spec_from_params
    from keyspot.keras_files import export_saved_model
    from keyspot.quantize import convert

    params = _params(repo, name)
    labels = [SILENCE, UNKNOWN, *getattr(params.dataset, "keywords", ())]
    spec = spec_from_params(params.features, params.dataset.sample_rate, params.dataset.clip_seconds, labels)
    spec = FeatureSpec(**{**spec.__dict__, "mean": (0.0,) * spec.num_coefficients,
                          "std": (1.0,) * spec.num_coefficients})
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = models.build(params.model, spec.shape, len(labels))
    calibration = rng.standard_normal((16, *spec.shape)).astype(np.float32)
    calibrate_random_weights(model, calibration, rng)
    export_saved_model(model, work / "saved_model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (convert(work / "saved_model", calibration[..., None]), spec, model.count_params(),
                models.count_macs(model))


def tflm_arena(model_path: Path) -> int | None:
    """keyspot.quantize.tflm_arena_bytes in a child process: TFLite Micro's
    Python runtime aborts the whole process on some models (the full-size
    ds_cnn_m among them), which must not end the report."""
    code = ("import sys; from keyspot.quantize import tflm_arena_bytes; "
            "print(tflm_arena_bytes(open(sys.argv[1], 'rb').read()))")
    result = subprocess.run([sys.executable, "-c", code, str(model_path)], capture_output=True, text=True)
    lines = result.stdout.split()
    return int(lines[-1]) if result.returncode == 0 and lines else None


def _sizes(text: str) -> dict[str, tuple[int, int, int]]:
    """arm-none-eabi-size (Berkeley) output -> file name: (text, data, bss)."""
    out = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 6:
            out[Path(fields[5]).name] = (int(fields[0]), int(fields[1]), int(fields[2]))
    return out


def _write_clips(folder: Path, spec) -> None:
    """Noise and a tone, in the frontend's clip length."""
    rng = np.random.default_rng(0)
    n = spec.clip_samples
    t = np.arange(n) / spec.sample_rate
    pcm = np.stack([rng.integers(-2000, 2000, n), 8000 * np.sin(2 * np.pi * 440 * t)])[:CLIPS]
    write_test_clips(folder, pcm, "keyspot.export.engine_report")


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
        raise ReportError(f"no timing lines in the QEMU output: {qemu_output[-500:]}")
    hz, empty = int(counter.group(1)), int(counter.group(2))
    ns_per_tick = 1e9 / hz
    return round(np.mean([(t - empty) * ns_per_tick / (1 << shift) for t in ticks]))


def board_image_run(repo: Path, generated: Path, clips: Path, build: Path, what: str) -> str:
    """Build firmware/psoc6's QEMU image (the board's model runner) against
    `generated` and run it on `clips` under -icount; its output."""
    make = ["make", "-s", "-C", repo / "firmware/psoc6", "-f", "gcc.mk", f"BUILD={build}",
            f"GENERATED={generated}", f"CLIPS={clips}", f"QEMU_CFLAGS={OPTIMISATION}"]
    _run([*make, "qemu"], f"{what}: make -f gcc.mk qemu")
    return _run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                 "-semihosting-config", "enable=on,target=native", "-icount", f"shift={ICOUNT_SHIFT}",
                 "-kernel", build / "qemu/keyspot-qemu.elf"], f"{what}: QEMU", timeout=600)


def scores_lines(qemu_output: str) -> list[str]:
    return re.findall(r"^clip \d+ scores [0-9a-f]+$", qemu_output, re.M)


def arena_used(qemu_output: str) -> tuple[int, int]:
    """(bytes used, bytes there) from the board image's `arena used U of N` line."""
    m = re.search(r"^arena used (\d+) of (\d+)$", qemu_output, re.M)
    if m is None:
        raise ReportError(f"no 'arena used' line in the QEMU output: {qemu_output[-500:]}")
    return int(m.group(1)), int(m.group(2))


def measure(repo: Path, name: str, work: Path) -> Row:
    from keyspot.export import ExportError, c_engine, export
    from keyspot.quantize import io_quantization

    core = repo / "firmware/core"
    model, spec, parameters, macs = int8_model(repo, name, work)
    (work / "model_int8.tflite").write_bytes(model)
    arena = tflm_arena(work / "model_int8.tflite")
    spec.save(work / "spec.json")
    # Where the host runtime cannot measure the arena, TFLite Micro on the target gets room to
    # spare and reports what it used.
    (work / "quantize.json").write_text(json.dumps({"tflm_arena_bytes": arena or SPARE_ARENA_BYTES,
                                                   **io_quantization(model)}))
    generated, build = work / "generated", work / "build"
    tflm_generated = work / "generated-tflm"
    try:
        export(work / "model_int8.tflite", work / "spec.json", work / "quantize.json", generated, engine="c")
        export(work / "model_int8.tflite", work / "spec.json", work / "quantize.json", tflm_generated)
    except ExportError as err:
        raise ReportError(f"{name}: {err}") from None
    _, summary = c_engine.generate(model, "")

    make = ["make", "-s", "-C", core, f"GENERATED={generated}", f"BUILD={build}", f"CFLAGS={OPTIMISATION}"]
    sizes = _sizes(_run([*make, "engine-size"], f"{name}: make engine-size"))
    (text, data, bss), (text0, data0, bss0) = sizes["engine_linked.elf"], sizes["engine_baseline.elf"]

    clips = work / "clips"
    _write_clips(clips, spec)
    engine_run = board_image_run(repo, generated, clips, work / "board-c", f"{name} (C engine)")
    tflm_run = board_image_run(repo, tflm_generated, clips, work / "board-tflm", f"{name} (TFLite Micro)")
    if scores_lines(engine_run) != scores_lines(tflm_run) or not scores_lines(tflm_run):
        raise ReportError(f"{name}: TFLite Micro and the C engine give different int8 scores on the "
                          f"Cortex-M4F:\n{chr(10).join(scores_lines(tflm_run))}\n"
                          f"{chr(10).join(scores_lines(engine_run))}")
    used, there = arena_used(tflm_run)
    if arena is not None and used > there:
        raise ReportError(f"{name}: TFLite Micro uses {used} arena bytes on the target, more than the "
                          f"{there} measured on the host")
    return Row(model=name, parameters=parameters, tflm_model_bytes=len(model), tflm_arena_bytes=arena,
               engine_flash_bytes=(text + data) - (text0 + data0),
               engine_constant_bytes=summary.constant_bytes,
               engine_ram_bytes=(data + bss) - (data0 + bss0),
               instructions=instructions_per_inference(engine_run), macs=macs,
               tflm_instructions=instructions_per_inference(tflm_run), tflm_arena_used_target=used)


def table(rows: list[Row]) -> str:
    head = ("model", "params", "MACs", "TFLM model B", "TFLM arena B (host)", "TFLM arena used on M4",
            "engine flash B", "of which constants B", "engine RAM B", "RAM vs arena",
            "TFLM+CMSIS-NN instr.", "C engine instr.", "TFLM / C", "C instr./MAC")
    body = [(r.model, f"{r.parameters:,}", f"{r.macs:,}", f"{r.tflm_model_bytes:,}",
             "TFLM aborts" if r.tflm_arena_bytes is None else f"{r.tflm_arena_bytes:,}",
             f"{r.tflm_arena_used_target:,}",
             f"{r.engine_flash_bytes:,}", f"{r.engine_constant_bytes:,}", f"{r.engine_ram_bytes:,}",
             "n/a" if r.ram_saving is None else f"{-r.ram_saving:+.1%}",
             f"{r.tflm_instructions:,}", f"{r.instructions:,}", f"{r.speedup:.2f}",
             f"{r.instructions / r.macs:.2f}" if r.macs else "n/a") for r in rows]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))) + " |"

    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="conf/model names (default: all)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="repository root (default: .)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        print(f"engine_report: needs {', '.join(missing)} (scripts/setup.sh installs them)", file=sys.stderr)
        return 2
    known = registered_models(repo)
    if not known:
        print(f"engine_report: {repo / 'conf/model'} has no models; run from the repository root "
              "or pass --repo", file=sys.stderr)
        return 2
    unknown = [m for m in args.models if m not in known]
    if unknown:
        print(f"engine_report: unknown model {', '.join(unknown)}; registered: {', '.join(known)}",
              file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="keyspot-engine-report-") as tmp:
        for name in args.models or known:
            print(f"engine_report: measuring {name} ...", file=sys.stderr, flush=True)
            work = Path(tmp) / name
            work.mkdir()
            try:
                rows.append(measure(repo, name, work))
            except ReportError as err:
                print(f"engine_report: {err}", file=sys.stderr)
                return 1
    print(table(rows))
    print(f"\nBuilt with arm-none-eabi-gcc {OPTIMISATION} for Cortex-M4F. Engine flash: a linked image with one "
          "inference minus one without; RAM: its .data + .bss, the two activation buffers and the window "
          f"scratch. Instructions: the board's model runner under qemu-system-arm -M mps2-an386 -icount "
          f"shift={ICOUNT_SHIFT}, the FPGA counter around model_runner_invoke(), mean of {CLIPS} clips, "
          "the same clips, main and flags for both runtimes (TFLite Micro: Infineon's prebuilt "
          "ml-tflite-micro library with its CMSIS-NN kernels); their int8 scores are equal. TFLM arena "
          "(host): keyspot.quantize.tflm_arena_bytes, no headroom, which c-export writes as "
          "KEYSPOT_TENSOR_ARENA_BYTES; used on M4: arena_used_bytes() after the inferences.")
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
