"""C source text as every generated file writes it: literals and array bodies."""

from __future__ import annotations

import numpy as np


class NonFiniteFloat(ValueError):
    """A NaN or infinity, which no C float literal can hold."""


def c_float(value: float, digits: int | None = None) -> str:
    """A float32 as a C literal that reads back to the same float: the
    shortest such text (0.1f, 1e-10f), or `%.<digits>g` (9 digits always
    read back exactly)."""
    v = np.float32(value)
    if not np.isfinite(v):
        raise NonFiniteFloat(f"cannot write {value!r} as a C float")
    text = str(v) if digits is None else f"{float(v):.{digits}g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text + "f"


def c_string(text: str) -> str:
    """A C string literal of `text`'s UTF-8 bytes; anything but printable
    ASCII is an octal escape."""
    out = []
    for b in text.encode("utf-8"):
        ch = chr(b)
        if ch in '"\\?':  # '?' escaped: "??" would start a trigraph under -std=c11
            out.append("\\" + ch)
        elif 0x20 <= b < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def rows(items: list[str], per_line: int, indent: str = "  ") -> str:
    """An array initialiser's body: `per_line` items a line, comma-separated."""
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join(indent + line for line in lines)
