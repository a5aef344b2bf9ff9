"""Import Keras or TensorFlow, or load a LiteRT model, without the runtime's
start-up notes on stderr.

TensorFlow's native libraries print their notes ("oneDNN custom operations
are on", "This TensorFlow binary is optimized to use ...", "All log messages
before absl::InitializeLog() ...") straight to file descriptor 2 while they
load, before any logging setting applies, so TF_CPP_MIN_LOG_LEVEL does not
silence them. A command's user asked for a label, not for these. The import
runs with descriptor 2 pointed at a temporary file; afterwards every line
that is not one of those notes goes to stderr as usual, so a real warning or
error is never lost. LiteRT prints its own note ("Created TensorFlow Lite
XNNPACK delegate for CPU") the same way when an interpreter takes its
optimised kernels.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

# The notes TensorFlow prints on every start; anything else is passed on.
_NOTES = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|cpu_feature_guard\.cc"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .*rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
    r"|Could not find cuda drivers on your machine"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU")

# Descriptor 2 is the process's: one thread at a time points it elsewhere, or
# a second would save the first's temporary file as "stderr" and restore it.
_REDIRECT = threading.RLock()


@contextmanager
def notes_dropped() -> Iterator[None]:
    """Run the body with descriptor 2 caught, then pass on to stderr every
    line that is not one of the runtime's start-up notes."""
    with _REDIRECT:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                caught.seek(0)
                passed_on = [line for line in caught.read().decode("utf-8", "replace").splitlines(keepends=True)
                             if not _NOTES.search(line)]
                if passed_on:
                    sys.stderr.write("".join(passed_on))
                    sys.stderr.flush()


def quietly_import(name: str) -> ModuleType:
    """`import name` (keras, tensorflow), TensorFlow's start-up notes dropped."""
    if name in sys.modules:
        return sys.modules[name]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with notes_dropped():
        return importlib.import_module(name)
