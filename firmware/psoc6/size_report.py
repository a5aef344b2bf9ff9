#!/usr/bin/env python3
"""Flash and RAM of a linked keyspot-psoc6 image, by part, from its linker
map: the application, the model data, TensorFlow Lite Micro (with the
CMSIS-NN kernels its library carries) or the C engine's kernels, the
Infineon libraries (BSP, PDL, HAL, retarget-io, CAPSENSE), the CM0+ image,
the C/C++ runtime, and the tensor arena (or the C engine's activation
buffers) apart from the RAM of the part that holds it.

    python3 size_report.py build/keyspot-psoc6.elf build/keyspot-psoc6.map --out build/size.json

Flash is what the image writes to flash (code, constants, .data's initial
values); RAM is .data, .bss and the like. The stack and the heap the linker
script reserves are reported apart: the heap is whatever RAM is left.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

FLASH = (0x10000000, 0x18000000)   # main flash and the EEPROM/supervisory flash regions
RAM = (0x08000000, 0x08100000)
RESERVED = {".heap": "heap", ".stack_dummy": "stack"}

# First match wins: (part, pattern on the input file's path).
PARTS = (
    ("model data", re.compile(r"/(model_data|engine_model)\.c\.o$")),
    ("C engine kernels", re.compile(r"/firmware/core/engine/")),
    ("TFLite Micro + CMSIS-NN", re.compile(r"libtensorflow-microlite\.a\(")),
    ("CM0+ image", re.compile(r"/psoc6cm0p/")),
    ("BSP, PDL, HAL, retarget-io", re.compile(
        r"/(TARGET_[^/]+|mtb-pdl-cat1|mtb-hal-cat1|retarget-io|core-lib|capsense)/")),
    # What is left of the objects compiled here: source/, ../core and the generated folder.
    ("application", re.compile(r"\.(c|cpp|S)\.o$")),
    ("C/C++ runtime", re.compile(r"(^|/)(lib[a-z_+]+\.a\(|crt[a-z0-9]*\.o$)")),
)
# TFLite Micro's arena (in model_runner.cpp: the application's) and the C
# engine's buffers (in the generated engine_model.c: the model data's), each
# reported as a part of its own: symbol -> (part, the part it is counted in).
ARENAS = {"tensor_arena": ("tensor arena", "application"),
          "g_engine_buffer_a": ("engine buffers", "model data"),
          "g_engine_buffer_b": ("engine buffers", "model data"),
          "g_engine_scratch": ("engine buffers", "model data")}


class SizeError(RuntimeError):
    pass


def output_sections(elf: Path, objdump: str) -> dict[str, tuple[int, int, int, set[str]]]:
    """name -> (size, vma, lma, flags) of each allocated section."""
    text = subprocess.run([objdump, "-h", str(elf)], capture_output=True, text=True, check=True).stdout
    lines = text.splitlines()
    out = {}
    for i, line in enumerate(lines):
        fields = line.split()
        if len(fields) == 7 and fields[0].isdigit() and i + 1 < len(lines):
            flags = {f.strip() for f in lines[i + 1].split(",")}
            # .stack_dummy is not allocated, only placed; keep it for the stack's size.
            if "ALLOC" in flags or fields[1] in RESERVED:
                out[fields[1]] = (int(fields[2], 16), int(fields[3], 16), int(fields[4], 16), flags)
    return out


def input_sections(map_text: str):
    """(output section, input file, size) for each input section of the map."""
    start = map_text.find("Linker script and memory map")
    if start < 0:
        raise SizeError("no 'Linker script and memory map' in the map file")
    output = None
    pending = None   # an input section name alone on its line
    for line in map_text[start:].splitlines():
        head = re.match(r"^(\.[^\s]+)(\s+0x[0-9a-f]+\s+0x[0-9a-f]+)?", line)
        if head:
            output = head.group(1)
            pending = None
            continue
        if pending is not None:
            m = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
            if m:
                yield output, m.group(3).strip(), int(m.group(2), 16)
            pending = None
            continue
        m = re.match(r"^ (\.\S+|COMMON)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*))?$", line)
        if m:
            if m.group(2) is None:
                pending = m.group(1)
            else:
                yield output, m.group(4).strip(), int(m.group(3), 16)


def part_of(path: str) -> str:
    for name, pattern in PARTS:
        if pattern.search(path):
            return name
    return "other"


def symbol_sizes(elf: Path, nm: str) -> dict[str, int]:
    text = subprocess.run([nm, "--print-size", "-C", str(elf)], capture_output=True, text=True,
                          check=True).stdout
    out = {}
    for line in text.splitlines():
        fields = line.split(maxsplit=3)
        if len(fields) == 4:
            out[fields[3]] = out.get(fields[3], 0) + int(fields[1], 16)
    return out


def _in(address: int, region: tuple[int, int]) -> bool:
    return region[0] <= address < region[1]


def report(elf: Path, map_file: Path, objdump: str = "arm-none-eabi-objdump",
           nm: str = "arm-none-eabi-nm") -> dict:
    sections = output_sections(elf, objdump)
    parts: dict[str, dict[str, int]] = {}
    reserved = {}
    for name, (size, _vma, _lma, _flags) in sections.items():
        if name in RESERVED:
            reserved[RESERVED[name]] = size
    for section, path, size in input_sections(map_file.read_text(errors="replace")):
        if section not in sections or section in RESERVED or size == 0:
            continue
        _, vma, lma, flags = sections[section]
        entry = parts.setdefault(part_of(path), {"flash": 0, "ram": 0})
        if "LOAD" in flags and _in(lma, FLASH):
            entry["flash"] += size
        if _in(vma, RAM):
            entry["ram"] += size
    # The arena (or the engine's buffers) is most of the RAM; say so apart.
    for name, size in symbol_sizes(elf, nm).items():
        if name.split("::")[-1] in ARENAS:
            part, holder = ARENAS[name.split("::")[-1]]
            parts.setdefault(holder, {"flash": 0, "ram": 0})["ram"] -= size
            parts.setdefault(part, {"flash": 0, "ram": 0})["ram"] += size
    flash = sum(p["flash"] for p in parts.values())
    ram = sum(p["ram"] for p in parts.values())
    image_flash = sum(size for name, (size, _vma, lma, flags) in sections.items()
                      if name not in RESERVED and "LOAD" in flags and _in(lma, FLASH))
    if flash != image_flash:
        parts["other"] = {"flash": parts.get("other", {}).get("flash", 0) + image_flash - flash,
                          "ram": parts.get("other", {}).get("ram", 0)}
        flash = image_flash
    return {"elf": elf.name, "flash_bytes": flash, "ram_bytes": ram,
            "stack_bytes": reserved.get("stack", 0), "heap_bytes": reserved.get("heap", 0),
            "parts": dict(sorted(parts.items(), key=lambda kv: -kv[1]["flash"] - kv[1]["ram"]))}


def table(sizes: dict) -> str:
    rows = [(name, f"{p['flash']:,}", f"{p['ram']:,}") for name, p in sizes["parts"].items()]
    rows.append(("total", f"{sizes['flash_bytes']:,}", f"{sizes['ram_bytes']:,}"))
    head = ("part", "flash B", "RAM B")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    fmt = [lambda c, w: c.ljust(w), lambda c, w: c.rjust(w), lambda c, w: c.rjust(w)]
    lines = ["| " + " | ".join(f(c, w) for f, c, w in zip(fmt, r, widths, strict=True)) + " |"
             for r in [head, *rows]]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines) + (f"\nplus a {sizes['stack_bytes']:,}-byte stack; "
                               f"the heap gets the remaining {sizes['heap_bytes']:,} bytes of RAM")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("elf", type=Path)
    parser.add_argument("map", type=Path)
    parser.add_argument("--out", type=Path, help="write the JSON here")
    args = parser.parse_args(argv)
    for path in (args.elf, args.map):
        if not path.is_file():
            print(f"size_report: {path} does not exist; build first (make -f gcc.mk)", file=sys.stderr)
            return 2
    try:
        sizes = report(args.elf, args.map)
    except (SizeError, subprocess.CalledProcessError) as err:
        print(f"size_report: {args.map}: {err}", file=sys.stderr)
        return 1
    if args.out:
        args.out.write_text(json.dumps(sizes, indent=2) + "\n")
    print(table(sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
