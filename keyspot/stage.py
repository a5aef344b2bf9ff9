"""Running a stage script: expected failures become one clear line.

A bad param, a missing input or unreadable data is the user's to fix
(keyspot.errors.UserError), so it gets a message naming the key or file and
exit status 2, not a traceback. An interrupted stage exits 130. Anything
else is a bug in keyspot and keeps its traceback. Every stage in dvc.yaml
goes through here, so they all exit alike.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from keyspot import redact
from keyspot.errors import UserError

# FileNotFoundError: an input an earlier stage writes; ValueError: a value
# out of range deep in a library, which names it.
EXPECTED = (UserError, FileNotFoundError, ValueError)
USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130


def run(name: str, body: Callable[[], None]) -> int:
    """Run a stage's body and return its exit status."""
    # TensorFlow's C++ start-up notes (oneDNN, CPU features) are not news.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    redact.install()
    try:
        body()
    except EXPECTED as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print(f"{name}: interrupted; outputs of this stage were left as they were", file=sys.stderr)
        return INTERRUPTED_EXIT
    return 0


def main(name: str, body: Callable[[], None]) -> None:
    sys.exit(run(name, body))
