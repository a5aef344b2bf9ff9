"""Which of ONNX Runtime's x86-64 float kernel sets this CPU gets.

ONNX Runtime runs Piper's and Kokoro's voices and picks its float kernels
by the CPU when it loads. Its AVX-512 kernels sum some of what its AVX2
ones sum in another order, so a longer utterance of Piper's has other
samples on an AVX-512 CPU than on an AVX2 one, and so has every clip with
it in its babble and everything made from those clips. Tests that pin
bytes made by fetch keep them for each kernel set and check this CPU's.
"""

from pathlib import Path


def onnx_runtime_kernels(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """"avx512", "avx2", or "other" (SSE only, or not Linux)."""
    flags = set()
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other"


KERNELS = onnx_runtime_kernels()


def expected(recorded, what: str):
    """`recorded` itself, or, where it is a dict by kernel set, this CPU's
    entry; a missing one fails the comparison with a message saying so."""
    if not isinstance(recorded, dict) or not recorded.keys() <= {"avx512", "avx2"}:
        return recorded
    return recorded.get(KERNELS, f"no {what} recorded for ONNX Runtime's {KERNELS} kernels")
