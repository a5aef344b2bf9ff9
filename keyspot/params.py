"""params.yaml read back into the schema of keyspot/schema.py, and validated.

Every stage reads its parameters through `load()`. A missing key, an unknown
key, a value of the wrong type or outside what its key allows stops the
stage with a message that names the key, so a typo in conf/ or in
`dvc exp run -S` never trains on defaults. Types are strict here (Hydra
would turn 3 into "3"): params.yaml is what the stages read.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path

from ruamel.yaml import YAML, YAMLError

from keyspot import schema
from keyspot.errors import UserError
from keyspot.schema import Config

PARAMS_FILE = Path("params.yaml")


class ParamsError(UserError, ValueError):
    """A params.yaml key is missing, unknown or of the wrong type."""


def read_yaml(path: Path):
    """Parse YAML as DVC does: YAML 1.2, where `yes`/`no`/`on`/`off` are
    strings (PyYAML's YAML 1.1 reads them as booleans) and `1e-10` a number."""
    return YAML(typ="safe", pure=True).load(Path(path).read_text())


def _variant(key: str, value) -> type:
    """The schema of `dataset` (by dataset.name) or `model` (by model.architecture)."""
    from keyspot.data.sources import sources
    from keyspot.models import architectures

    choices, field_name = ({name: s.schema for name, s in sources().items()}, "name") if key == "dataset" \
        else ({name: a.schema for name, a in architectures().items()}, "architecture")
    if not isinstance(value, dict):
        raise ParamsError(f"{key}: expected a mapping, got {value!r}")
    chosen = value.get(field_name)
    if chosen not in choices:
        raise ParamsError(f"{key}.{field_name}: {chosen!r} is not one of {sorted(choices)}")
    return choices[chosen]


def _convert(value, hint, key: str):
    """Return `value` as type `hint`, or raise ParamsError naming `key`."""
    origin = typing.get_origin(hint)
    if hint is typing.Any:
        return _build(_variant(key, value), value, key)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ParamsError(f"{key}: expected {len(args)} values, got {len(value)}: {value!r}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {value!r}")
        _, value_type = typing.get_args(hint)
        return {k: _convert(v, value_type, f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ParamsError(f"{key}: {value!r} is not a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            # YAML reads `yes`, `no`, `on` and `off` as booleans.
            raise ParamsError(f"{key}: expected a string, got {value!r} (quote it in YAML)")
        return value
    raise TypeError(f"unsupported type {hint} for {key}")


def _check_rules(key: str, value, metadata) -> None:
    """The rules `keyspot.schema.setting` attached to a field."""
    choices = metadata.get("choices")
    if choices and value not in choices:
        raise ParamsError(f"{key}: {value!r} is not one of {sorted(choices)}")
    allowed = metadata.get("allowed")
    if allowed is not None:
        numbers = value.values() if isinstance(value, dict) else value if isinstance(value, tuple) else [value]
        for v in numbers:
            if not allowed.admits(v):
                shown = list(value) if isinstance(value, tuple) else value
                raise ParamsError(f"{key}: {shown!r} is not allowed; it must be {allowed}")
    if metadata.get("ordered") and value[0] > value[1]:
        raise ParamsError(f"{key}: {list(value)!r} is not [low, high]; the first must not exceed the second")


def _build(cls, data, prefix: str):
    if not isinstance(data, dict):
        raise ParamsError(f"{prefix or 'params'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = ", ".join(f"{prefix}.{k}" if prefix else str(k) for k in unknown)
        raise ParamsError(f"unknown key(s) {where}; allowed: {', '.join(names)}")
    values = {}
    for f in fields:
        key = f"{prefix}.{f.name}" if prefix else f.name
        if f.name not in data:
            raise ParamsError(f"{key}: missing")
        values[f.name] = _convert(data[f.name], hints[f.name], key)
        _check_rules(key, values[f.name], f.metadata)
    return cls(**values)


def _validate(obj, prefix: str) -> None:
    """Each class's rules across its keys (`validate`), the innermost first."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _validate(value, f"{prefix}.{f.name}" if prefix else f.name)
    if hasattr(obj, "validate"):
        try:
            obj.validate(prefix)
        except schema.SchemaError as err:
            raise ParamsError(str(err)) from None


def from_dict(data: dict) -> Config:
    params = _build(Config, data, "")
    _validate(params, "")
    return params


def load(path: Path | str = PARAMS_FILE) -> Config:
    """Read and validate params.yaml; raise ParamsError naming the bad key."""
    path = Path(path)
    try:
        data = read_yaml(path)
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found; run `make params` to compose it from conf/") from None
    except YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    try:
        return from_dict(data)
    except ParamsError as err:
        raise ParamsError(f"{path}: {err}") from None


def flatten(params) -> dict[str, object]:
    """`{"train.lr": 0.003, ...}` for experiment trackers."""
    out: dict[str, object] = {}

    def walk(obj, prefix):
        if dataclasses.is_dataclass(obj):
            for f in dataclasses.fields(obj):
                walk(getattr(obj, f.name), f"{prefix}{f.name}.")
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = list(obj) if isinstance(obj, tuple) else obj

    walk(params, "")
    return out
