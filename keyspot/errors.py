"""The one base of every error a user fixes.

A bad param, a missing or unreadable input, a dataset that cannot be
fetched, a service setting: each such error is a `UserError`, so that
`keyspot.stage` (and the SageMaker entry points) report it as one line that
names the key or file and what to do, with exit status 2. Any other
exception is a bug in keyspot and keeps its traceback.

Each subclass keeps the built-in base it had (ValueError, RuntimeError), so
code that catches those still does.
"""


class UserError(Exception):
    """Something the user fixes; the message names it and what to do."""
