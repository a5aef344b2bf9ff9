"""dataset.name -> the source that writes data/raw/ for it.

A source is a module of keyspot/data/ that holds `SOURCE =
keyspot.data.source.Source(...)` (see there for the contract); adding one is
that module and its conf/dataset/<name>.yaml. The features stage reads only
data/raw/.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path

import keyspot.data
from keyspot.data.source import Source

REQUIRED_KEYS = ("name", "sample_rate", "clip_seconds")


@functools.cache
def sources() -> dict[str, Source]:
    found: dict[str, Source] = {}
    for module in pkgutil.iter_modules(keyspot.data.__path__):
        source = getattr(importlib.import_module(f"keyspot.data.{module.name}"), "SOURCE", None)
        if isinstance(source, Source):
            # What the features stage and the config checks read of every source.
            missing = [key for key in REQUIRED_KEYS if key not in source.schema.__dataclass_fields__]
            if missing:
                raise RuntimeError(f"keyspot/data/{module.name}.py: the schema of source {source.name!r} "
                                   f"lacks {', '.join(missing)}; every source has {', '.join(REQUIRED_KEYS)}")
            if source.name in found:
                raise RuntimeError(f"keyspot/data/{module.name}.py: a second source named {source.name!r}")
            found[source.name] = source
    return dict(sorted(found.items()))


def fetch(dataset, seed: int, out: Path):
    return sources()[dataset.name].fetch(dataset, seed, out)


def fetch_sentences(dataset, seed: int, out: Path) -> int:
    """data/sentences/ for the streams: the source's, or for a source that
    reads none a sentences.csv of its header alone. How many sentences."""
    source = sources()[dataset.name]
    if source.sentences is not None:
        return source.sentences(dataset, seed, out)
    from keyspot import artifacts
    from keyspot.data.sentences import SENTENCES, write_sentences

    artifacts.clear_stale(Path(out))
    with artifacts.staged_dir(Path(out)) as tmp:
        write_sentences(tmp / SENTENCES, [])
    return 0
