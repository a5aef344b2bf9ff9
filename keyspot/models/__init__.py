"""Model architectures, one module each, found by name.

An architecture is a module of keyspot/models/ that holds `ARCHITECTURE =
Architecture(name, schema, build)`: `schema` is the dataclass of its
hyperparameters (the `model.*` keys, a Hydra structured config, see
keyspot/schema.py) and `build(params.model, input_shape, num_labels)` returns
the Keras model. conf/model/<x>.yaml names a size of one (model.architecture).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Architecture:
    name: str          # model.architecture
    schema: type       # the dataclass of its model.* keys
    build: Callable    # build(params.model, input_shape, num_labels) -> keras.Model


@functools.cache
def architectures() -> dict[str, Architecture]:
    found: dict[str, Architecture] = {}
    for module in pkgutil.iter_modules(__path__):
        arch = getattr(importlib.import_module(f"{__name__}.{module.name}"), "ARCHITECTURE", None)
        if isinstance(arch, Architecture):
            if arch.name in found:
                raise RuntimeError(f"keyspot/models/{module.name}.py: a second architecture named {arch.name!r}")
            found[arch.name] = arch
    return dict(sorted(found.items()))


def build(model_params, input_shape: tuple[int, int], num_labels: int):
    try:
        arch = architectures()[model_params.architecture]
    except KeyError:
        raise ValueError(f"model.architecture: unknown architecture {model_params.architecture!r}; "
                         f"known: {', '.join(architectures())}") from None
    return arch.build(model_params, input_shape, num_labels)


def count_macs(model) -> int:
    """Multiply-accumulates of one inference, counted layer by layer."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)
