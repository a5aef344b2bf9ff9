"""Running a stage script: expected failures become one clear line.

A bad param, a missing input or unreadable data is the user's to fix, so it
gets a message naming the key or file and exit status 2, not a traceback.
Anything else is a bug in keyspot and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from keyspot import redact
from keyspot.audio import AudioError
from keyspot.params import ParamsError

EXPECTED = (ParamsError, AudioError, FileNotFoundError, ValueError)


def main(name: str, body: Callable[[], None]) -> None:
    # TensorFlow's C++ start-up notes (oneDNN, CPU features) are not news.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    redact.install()
    try:
        body()
    except EXPECTED as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; outputs of this stage were left as they were", file=sys.stderr)
        sys.exit(130)
