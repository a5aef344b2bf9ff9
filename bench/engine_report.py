"""Flash, RAM and instructions per inference of keyspot's C engine and of
TensorFlow Lite Micro with CMSIS-NN for every model config (conf/model/*.yaml), on the same
Cortex-M4F under QEMU.

    python bench/engine_report.py                 # every conf/model/*.yaml
    python bench/engine_report.py ds_cnn_s cnn    # some of them
    make -C firmware/core engine-report           # the same, from the firmware tree

Each model is built at its configured size with random weights (sizes and
instruction counts do not depend on training), converted to int8 as the
quantize stage does, and measured:

- TFLM model and arena: the .tflite's bytes; the smallest arena TFLite Micro
  accepts (keyspot.quantize.tflm_arena_bytes, no headroom).
- engine flash and RAM: what one inference adds to a linked Cortex-M4F image
  (`make engine-size`: the same program with and without the engine,
  arm-none-eabi-size): kernels, weights and constants, libgcc's double
  helpers; RAM is the two activation buffers and the convolutions'
  scratch (widened windows, a depthwise input plane).
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
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from keyspot.labels import SILENCE, UNKNOWN

# The board image is built and run as the firmware tests do it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from board_helpers import (  # noqa: E402
    ICOUNT_SHIFT,
    OPTIMISATION,
    BoardError,
    arena_used,
    board_image_run,
    calibrate_random_weights,
    instructions_per_inference,
    run_tool,
    scores_lines,
    write_test_clips,
)

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


def model_configs(repo: Path) -> list[str]:
    return sorted(p.stem for p in (repo / "conf/model").glob("*.yaml"))


def _params(repo: Path, name: str):
    from keyspot.compose import compose
    from keyspot.params import from_dict

    return from_dict(compose(repo / "conf", [f"model={name}"]))


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
    keras.backend.clear_session()   # layer names count up per session, and the .tflite holds them
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
    write_test_clips(folder, pcm, "bench/engine_report.py")


def measure(repo: Path, name: str, work: Path) -> Row:
    from keyspot.export import ExportError, c_engine, export
    from keyspot.export.device_model import compact_zero_points
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
    sizes = _sizes(run_tool([*make, "engine-size"], f"{name}: make engine-size"))
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
    # What c-export puts in flash for TFLite Micro: one zero point per weight tensor.
    return Row(model=name, parameters=parameters, tflm_model_bytes=len(compact_zero_points(model)),
               tflm_arena_bytes=arena,
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
    known = model_configs(repo)
    if not known:
        print(f"engine_report: {repo / 'conf/model'} has no models; run from the repository root "
              "or pass --repo", file=sys.stderr)
        return 2
    unknown = [m for m in args.models if m not in known]
    if unknown:
        print(f"engine_report: unknown model {', '.join(unknown)}; model configs: {', '.join(known)}",
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
            except (ReportError, BoardError) as err:
                print(f"engine_report: {err}", file=sys.stderr)
                return 1
    print(table(rows))
    print(f"\nBuilt with arm-none-eabi-gcc {OPTIMISATION} for Cortex-M4F. Engine flash: a linked image with one "
          "inference minus one without; RAM: its .data + .bss, the two activation buffers and the "
          f"convolutions' scratch. Instructions: the board's model runner under qemu-system-arm -M mps2-an386 -icount "
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
