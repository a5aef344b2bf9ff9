"""The one base of every error a user fixes.

A bad param, a missing or unreadable input, a dataset that cannot be
fetched, a service setting: each such error is a `UserError`, so that
`keyspot.stage` (and the SageMaker entry points) report it as one line that
names the key or file and what to do, with exit status 2. Any other
exception is a bug in keyspot and keeps its traceback.

Each subclass keeps the built-in base it had (ValueError, RuntimeError), so
code that catches those still does.
"""

import re


class UserError(Exception):
    """Something the user fixes; the message names it and what to do."""


# Python's default repr of an object ("<_io.BytesIO object at 0x7fb3...>"),
# which libraries put in their messages about a stream they were handed.
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def without_object_reprs(text: str, name: str) -> str:
    """`text` with each object repr replaced by `name`, the file or request
    the user knows: a user-facing message never shows a Python object."""
    return _OBJECT_REPR.sub(name, text)
