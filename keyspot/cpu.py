"""The same float results on every x86-64 CPU.

TensorFlow's matrix products run oneDNN's sgemm, which picks its kernels
by the CPU's instruction set when it first runs (SSE4.1, AVX2, AVX-512):
the sums then round in another order, and a model trained on an AVX-512
server differs in its last bits from one trained on an AVX2 laptop, and so
does everything after it (the int8 model, the generated C). Pinning oneDNN
to SSE4.1, which every x86-64 CPU in use has, gives every machine the same
bytes; on a 2-core AVX2 machine training DS-CNN S is no slower for it
(2 epochs of 2048 clips: 9.5 s pinned, 10.3 s not).
"""

from __future__ import annotations

import os

ISA = "SSE41"   # oneDNN's name for SSE4.1


def pin_kernels() -> None:
    """Before the first matrix product of the process: oneDNN reads the
    setting once. Overrides ONEDNN_MAX_CPU_ISA from the environment, which
    would otherwise make results depend on who ran the stage."""
    os.environ["ONEDNN_MAX_CPU_ISA"] = ISA
