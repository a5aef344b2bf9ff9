"""The same float results on every x86-64 CPU.

Three libraries pick their kernels by the CPU they run on, and each choice
rounds sums in another order: numpy's BLAS (OpenBLAS: Nehalem, Haswell,
SkylakeX kernels for the feature frontend's matrix products), numpy's own
loops (SSE4.2, AVX2 or AVX-512 versions of log, exp, ...) and TensorFlow's
oneDNN. Left alone, the features of the same clips differ in their last bits
between an AVX2 laptop and an AVX-512 server, and so does everything after
them. keyspot pins all three to kernels every x86-64 CPU in use has.

numpy and OpenBLAS read their settings once, when numpy loads:
`pin_numpy`, which `import keyspot` calls, must come before the first
`import numpy` of the process (a stage's first import is keyspot). The
frontend is no slower for it (1,500 clips on a 2-core AVX-512 machine:
2.3 s pinned, 2.5 s not).

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
BLAS_CORE = "Nehalem"   # OpenBLAS's SSE4.2 kernels
# numpy's dispatch groups above its x86-64-v2 (SSE4.2) baseline: AVX2 and AVX-512 loops.
NUMPY_DISABLED = "X86_V3 X86_V4"


def pin_numpy() -> None:
    """Before numpy is imported. Overrides OPENBLAS_CORETYPE and
    NPY_DISABLE_CPU_FEATURES from the environment, as pin_kernels does."""
    os.environ["OPENBLAS_CORETYPE"] = BLAS_CORE
    os.environ["NPY_DISABLE_CPU_FEATURES"] = NUMPY_DISABLED


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container
    or `taskset` may narrow below the machine's count): every "0 workers:
    one per core" in keyspot means these."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pin_kernels() -> None:
    """Before the first matrix product of the process: oneDNN reads the
    setting once. Overrides ONEDNN_MAX_CPU_ISA from the environment, which
    would otherwise make results depend on who ran the stage."""
    os.environ["ONEDNN_MAX_CPU_ISA"] = ISA
