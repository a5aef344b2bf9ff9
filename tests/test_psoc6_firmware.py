"""firmware/psoc6 against the real Infineon libraries: the pins of deps/ exist
and agree with the BSP's dependency manifest, the application links for the
kit's Cortex-M4 without ModusToolbox for both engines, and TensorFlow Lite
Micro (Infineon's prebuilt library with CMSIS-NN) runs the board's
model_runner.cpp on a Cortex-M4F under QEMU with the TFLite interpreter's
labels and within the generated arena.

The libraries come from GitHub or from the mirror git's insteadOf points at
(the `psoc6_libs` fixture, tests/conftest.py).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from board_helpers import arena_used, board_image_run, espeak_wav, write_test_clips
from test_firmware_core import _predict

from keyspot import audio
from keyspot.export import device_ram, export
from keyspot.export.device_model import expand_zero_points
from keyspot.features import FeatureSpec
from keyspot.tflite_runner import quantize_input

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning"),
]

REPO = Path(__file__).resolve().parents[1]
PSOC6 = REPO / "firmware/psoc6"
GENERATED = PSOC6 / "source/generated"
BSP = "TARGET_CY8CKIT-062S2-43012"
MANIFEST = "https://github.com/Infineon/mtb-bsp-manifest"
# Clips of the smoke pipeline's test split run on the target: enough for every
# label, few enough that test_clips.c compiles in seconds.
TARGET_CLIPS = 40


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


def _pins() -> dict[str, str]:
    """deps/*.mtb: library name -> tag."""
    out = {}
    for mtb in sorted((PSOC6 / "deps").glob("*.mtb")):
        url, tag, _ = mtb.read_text().strip().split("#")
        out[url.rstrip("/").rsplit("/", 1)[1]] = tag
    return out


# ---------------------------------------------------------------- pins

def test_every_pin_names_a_tag_that_exists(psoc6_libs):
    result = _run([PSOC6 / "getlibs.sh", "--check"])
    assert sorted(re.findall(r"getlibs: (\S+) (\S+) exists", result.stdout)) == sorted(_pins().items())


def test_a_wrong_tag_fails_the_check(psoc6_libs, tmp_path):
    shutil.copytree(PSOC6 / "deps", tmp_path / "deps")
    shutil.copy(PSOC6 / "getlibs.sh", tmp_path)
    bad = tmp_path / "deps" / f"{BSP}.mtb"
    # The tag the application pinned before: it never existed upstream.
    bad.write_text(f"https://github.com/Infineon/{BSP}#release-v4.3.0#$$ASSET_REPO$$/{BSP}/release-v4.3.0\n")
    result = subprocess.run([tmp_path / "getlibs.sh", "--check"], capture_output=True, text=True)
    assert result.returncode != 0
    assert f"{bad}: https://github.com/Infineon/{BSP} has no tag release-v4.3.0" in result.stderr
    assert "getlibs: mtb-pdl-cat1" in result.stdout   # the others are still checked


def test_pins_agree_with_the_bsp_dependency_manifest(psoc6_libs, tmp_path):
    """Each library the BSP release depends on (mtb-bsp-manifest) is pinned,
    at a release of the major version the manifest names (latest-vN.X)."""
    _run(["git", "clone", "-q", "--depth", "1", MANIFEST, tmp_path / "manifest"])
    root = ET.parse(tmp_path / "manifest/mtb-bsp-dependencies-manifest.xml").getroot()
    pins = _pins()
    (depender,) = [d for d in root.iter("depender") if d.findtext("id") == BSP.removeprefix("TARGET_")]
    (version,) = [v for v in depender.iter("version") if v.findtext("commit") == pins[BSP]]
    wanted = {d.findtext("id"): d.findtext("commit") for d in version.iter("dependee")}
    print(f"\n{BSP} {pins[BSP]} depends on {wanted}")
    assert wanted, f"the manifest lists no dependencies for {BSP} {pins[BSP]}"
    for library, commit in wanted.items():
        major = re.fullmatch(r"latest-v(\d+)\.X", commit).group(1)
        assert library in pins, f"deps/ has no {library}.mtb ({commit})"
        assert re.fullmatch(rf"release-v{major}\.\d+\.\d+", pins[library]), (library, pins[library], commit)


# ---------------------------------------------------------------- the build

def test_both_builds_compile_every_engine_kernel():
    """app.mk, which the ModusToolbox Makefile and gcc.mk both read, names each
    of the C engine's kernels (ModusToolbox finds source/ by itself)."""
    app = (PSOC6 / "app.mk").read_text()
    assert "include app.mk" in (PSOC6 / "Makefile").read_text() and "include app.mk" in \
        (PSOC6 / "gcc.mk").read_text()
    kernels = sorted((REPO / "firmware/core/engine").glob("*.c"))
    assert kernels and all(f"../core/engine/{k.name}" in app for k in kernels)


def _build(build: Path, generated: Path = GENERATED) -> Path:
    _run(["make", "-s", "-C", PSOC6, "-f", "gcc.mk", "-j2", f"BUILD={build}", f"GENERATED={generated}"],
         timeout=1200)
    return build


def _symbols(elf: Path) -> set[str]:
    out = _run(["arm-none-eabi-nm", "-C", "--defined-only", elf]).stdout
    return {line.split(" ", 2)[2] for line in out.splitlines() if line.count(" ") >= 2}


def _hex_ranges(path: Path) -> list[tuple[int, int]]:
    """(first, last) address of each contiguous run of an Intel HEX file's data."""
    base, runs = 0, []
    for line in path.read_text().split():
        count, address, kind = int(line[1:3], 16), int(line[3:7], 16), int(line[7:9], 16)
        if kind == 4:
            base = int(line[9:13], 16) << 16
        elif kind == 0:
            start = base + address
            if runs and runs[-1][1] + 1 == start:
                runs[-1] = (runs[-1][0], start + count - 1)
            else:
                runs.append((start, start + count - 1))
    return runs


# What the image must hold from each library: BSP start-up and configurator
# output, PDL, HAL, retarget-io, and the CM0+ image at the start of flash.
PLATFORM_SYMBOLS = ("Reset_Handler", "cybsp_init", "init_cycfg_all", "Cy_SysLib_Delay", "Cy_GPIO_Pin_Init",
                    "cyhal_pdm_pcm_init", "cyhal_gpio_init", "cy_retarget_io_init", "cy_m0p_image")


def _check_image(build: Path) -> tuple[set[str], dict]:
    elf, hexfile = build / "keyspot-psoc6.elf", build / "keyspot-psoc6.hex"
    symbols = _symbols(elf)
    assert not [s for s in PLATFORM_SYMBOLS if s not in symbols]
    runs = _hex_ranges(hexfile)
    # The CM0+ image at the flash start (0x10000000), the CM4 vectors at 0x10002000.
    assert runs[0][0] == 0x10000000 and any(a <= 0x10002000 <= b for a, b in runs), runs[:4]
    sizes = json.loads((build / "size.json").read_text())
    assert sizes["flash_bytes"] == sum(p["flash"] for p in sizes["parts"].values())
    # Every object is put in its part; what is left is the linker's padding.
    assert sizes["parts"].get("other", {"flash": 0})["flash"] < 1024
    return symbols, sizes


def _static_sizes(build: Path) -> dict[tuple[str, str], int]:
    """(object file name, symbol) -> size of each static-storage symbol the
    objects compiled from firmware/ define; a function's statics lose their
    numeric suffix, C++ names their namespace."""
    out = {}
    for obj in sorted((build / "obj").rglob("*.o")):
        if "/firmware/psoc6/" not in obj.as_posix() and "/firmware/core/" not in obj.as_posix() \
                and "/generated/" not in obj.as_posix():
            continue
        listing = _run(["arm-none-eabi-nm", "-C", "-S", "--defined-only", obj]).stdout
        for line in listing.splitlines():
            fields = line.split(" ", 3)
            if len(fields) == 4 and fields[2] in "bBdD":
                symbol = re.sub(r"\.\d+$", "", fields[3].rsplit("::", 1)[-1])
                out[(obj.name, symbol)] = int(fields[1], 16)
    return out


def _check_ram(build: Path, sizes: dict, model: list[device_ram.Buffer], chain: list[device_ram.Buffer]):
    """Each buffer device_ram counts is in the image at its size, and they
    are all of the application's RAM but a little: the figure c-export
    reports (reports/firmware.json, the model card, summary.json's
    ram_bytes) is what the board holds."""
    statics = _static_sizes(build)
    for b in model + chain:
        obj = Path(b.source).name + ".o"
        assert statics.get((obj, b.symbol)) == b.bytes, (b, {k: v for k, v in statics.items() if k[0] == obj})
    # The model's buffers are parts of their own (size_report.py); the chain's are the application's.
    rest = sizes["parts"]["application"]["ram"] - sum(b.bytes for b in chain)
    print(f"RAM: {sum(b.bytes for b in model + chain):,} bytes in keyspot's buffers; the rest of the application "
          f"{rest:,}; the image {sizes['ram_bytes']:,}")
    # What is left: TFLite Micro's interpreter and op resolver objects, the
    # HAL's PDM and clock objects, a few counters.
    assert 0 <= rest < 1024, rest


def _committed_chain() -> list[device_ram.Buffer]:
    """device_ram.chain_buffers for the committed generated folder, whose
    feature spec (data/features/spec.json) a clone does not have."""
    defines = dict(re.findall(r"#define (KEYSPOT_\w+)\s+(\d+)\s*$", (GENERATED / "feature_config.h").read_text(), re.M))
    spec = types.SimpleNamespace(**{key: int(defines["KEYSPOT_" + key.upper()]) for key in (
        "sample_rate", "window_samples", "fft_size", "mel_bins", "num_frames", "num_coefficients")})
    return device_ram.chain_buffers(spec)


@pytest.mark.slow
def test_firmware_links_with_tflite_micro_and_cmsis_nn(psoc6_libs, tmp_path):
    """The committed generated folder (export.engine=tflm), as `make firmware` builds it."""
    symbols, sizes = _check_image(_build(tmp_path / "build"))
    tflm = [s for s in symbols if s.startswith("tflite::MicroInterpreter::")]
    cmsis_nn = sorted(s for s in symbols if s.startswith("arm_") and s.endswith("_s8"))
    print(f"\nTFLite Micro: {len(tflm)} MicroInterpreter symbols; CMSIS-NN: {cmsis_nn}\n"
          f"{json.dumps(sizes, indent=1)}")
    assert "tflite::MicroInterpreter::Invoke()" in symbols and cmsis_nn
    parts = sizes["parts"]
    model_bytes = int(re.search(r"g_model_data_len = (\d+);", (GENERATED / "model_data.c").read_text()).group(1))
    assert parts["model data"]["flash"] >= model_bytes
    assert parts["TFLite Micro + CMSIS-NN"]["flash"] > 10_000
    arena = int(re.search(r"KEYSPOT_TENSOR_ARENA_BYTES (\d+)", (GENERATED / "model_settings.h").read_text())[1])
    assert parts["tensor arena"]["ram"] == arena
    _check_ram(tmp_path / "build", sizes, device_ram.model_buffers("tflm", arena), _committed_chain())


@pytest.mark.slow
def test_firmware_links_with_the_c_engine(psoc6_libs, pipeline, tmp_path):
    """The smoke pipeline's model exported with export.engine=c: no TFLite Micro in the image."""
    root = pipeline["root"]
    generated = tmp_path / "generated"
    export(root / "models/model_int8.tflite", root / "data/features/spec.json", root / "reports/quantize.json",
           generated, engine="c", firmware_report=tmp_path / "firmware.json")
    symbols, sizes = _check_image(_build(tmp_path / "build", generated))
    assert "keyspot_engine_invoke" in symbols
    assert not [s for s in symbols if s.startswith("tflite::")]
    assert "TFLite Micro + CMSIS-NN" not in sizes["parts"] and sizes["parts"]["engine buffers"]["ram"] > 0
    report = json.loads((tmp_path / "firmware.json").read_text())
    buffers = [device_ram.Buffer(**b) for b in report["ram"]]
    model = [b for b in buffers if b.symbol.startswith("g_engine_")]
    assert report["engine"] == "c" and report["ram_bytes"] == sum(b.bytes for b in buffers)
    assert report["model_ram_bytes"] == sum(b.bytes for b in model) == sizes["parts"]["engine buffers"]["ram"]
    _check_ram(tmp_path / "build", sizes, model, [b for b in buffers if b not in model])


# ---------------------------------------------------------------- TFLite Micro on a Cortex-M4F

def _on_target(generated: Path, pcm: np.ndarray, build: Path) -> str:
    write_test_clips(build / "clips", pcm, "tests/test_psoc6_firmware.py")
    return board_image_run(REPO, generated, build / "clips", build, "tests/test_psoc6_firmware.py")


def _lines(text: str, kind: str) -> np.ndarray:
    rows = re.findall(rf"^clip \d+ {kind} ([0-9a-f]+)$", text, re.M)
    return np.stack([np.frombuffer(bytes.fromhex(r), dtype=np.int8) for r in rows])


def _compare(model: bytes, generated: Path, pcm: np.ndarray, build: Path, what: str,
             spec: FeatureSpec | None = None):
    """The board's model_runner.cpp on the target against TFLite's reference
    kernels on the same int8 features; with `spec`, the target's features
    against Python's too. `model` is the .tflite the generated folder was made from."""
    from keyspot import features
    from keyspot.quantize import io_quantization

    text = _on_target(generated, pcm, build)
    assert re.search(r"^runtime tflm$", text, re.M) and "done" in text, text[-2000:]
    target_x, target_y = _lines(text, "int8"), _lines(text, "scores")
    reference = _predict(model, target_x)   # TFLite's reference kernels
    steps = np.abs(target_y.astype(np.int16) - reference.astype(np.int16))
    used, generated_arena = arena_used(text)
    same = (target_y.argmax(1) == reference.argmax(1))
    print(f"\n{what}: {len(pcm)} clips on the Cortex-M4F (QEMU mps2-an386), TFLite Micro with CMSIS-NN "
          f"against TFLite's reference kernels: same label on {same.mean():.0%}, largest difference "
          f"{int(steps.max())} steps (of 256), scores equal on {(steps == 0).mean():.2%}; "
          f"arena used on the target {used} of the generated {generated_arena} bytes")
    if spec is not None:
        io = io_quantization(model)
        python_x = quantize_input(features.compute(pcm, spec), io["input_scale"], io["input_zero_point"])
        assert np.abs(target_x.astype(np.int16) - python_x.reshape(target_x.shape).astype(np.int16)).max() <= 1
    assert same.all(), [(i, int(a), int(b)) for i, (a, b) in
                        enumerate(zip(target_y.argmax(1), reference.argmax(1), strict=True)) if a != b]
    assert steps.max() <= 2
    assert used <= generated_arena


@pytest.mark.slow
def test_tflite_micro_on_the_cortex_m4_agrees_with_tflite_on_the_pipeline_test_split(psoc6_libs, pipeline,
                                                                                    tmp_path):
    root = pipeline["root"]
    spec = FeatureSpec.load(root / "data/features/spec.json")
    with open(root / "data/raw/manifest.csv", newline="") as f:
        paths = [row["path"] for row in csv.DictReader(f) if row["split"] == "test"]
    paths = paths[:: max(1, len(paths) // TARGET_CLIPS)][:TARGET_CLIPS]
    pcm = np.stack([audio.load_clip(root / "data/raw" / p, spec.sample_rate, spec.clip_samples) for p in paths])
    model = (root / "models/model_int8.tflite").read_bytes()
    _compare(model, root / "firmware/psoc6/source/generated", pcm, tmp_path, "smoke pipeline model", spec)


def _committed_model() -> tuple[bytes, int, int]:
    """The model inside the committed generated folder, its sample rate and clip length."""
    data = (GENERATED / "model_data.c").read_text()
    body = data[data.index("g_model_data[] = {"):data.index("};")]
    model = bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", body))
    config = (GENERATED / "feature_config.h").read_text()
    rate, samples = (int(re.search(rf"#define {name}\s+(\d+)", config)[1])
                     for name in ("KEYSPOT_SAMPLE_RATE", "KEYSPOT_CLIP_SAMPLES"))
    return model, rate, samples


@pytest.mark.slow
def test_the_committed_model_fits_its_arena_on_the_cortex_m4(psoc6_libs, tmp_path):
    """The default model as the board gets it, on spoken words: the generated
    KEYSPOT_TENSOR_ARENA_BYTES is enough for TFLite Micro on the target."""
    model, rate, samples = _committed_model()
    clips = []
    for i, (word, voice) in enumerate([("yes", "en-us"), ("left", "en+f3"), ("stop", "en-gb"),
                                       ("seven", "en-us+m2")]):
        wav = tmp_path / f"{i}.wav"
        espeak_wav(wav, word, voice)
        clips.append(audio.load_clip(wav, rate, samples))
    clips.append(np.zeros(samples, dtype=np.int16))
    # The array stores one zero point per weight tensor (device_model.py), which
    # TFLite's reference interpreter refuses: it checks the target against TFLite's form.
    _compare(expand_zero_points(model), GENERATED, np.stack(clips), tmp_path, "committed model")
