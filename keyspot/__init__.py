"""keyspot: keyword-spotting models from audio to a microcontroller."""

from keyspot import cpu as _cpu

# Before any keyspot module imports numpy: the same bytes on every CPU (keyspot/cpu.py).
_cpu.pin_numpy()
