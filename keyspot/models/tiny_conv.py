"""tiny_conv: the model of TensorFlow Lite Micro's micro_speech example.

One strided convolution and one dense layer; a few kilobytes in int8.
"""

from __future__ import annotations

import dataclasses
import typing

from keyspot.models import Architecture
from keyspot.schema import AT_LEAST_ONE, BELOW_ONE, setting

if typing.TYPE_CHECKING:
    import keras


@dataclasses.dataclass
class TinyConv:
    """tiny_conv's hyperparameters: micro_speech's values."""
    # This model's name: its conf/model file, the Keras model's name where the
    # architecture uses it, and part of the MLflow registered model's name.
    name: str = "tiny_conv"
    architecture: str = "tiny_conv"
    filters: int = setting(8, allowed=AT_LEAST_ONE)
    first_kernel: tuple[int, int] = setting((10, 8), allowed=AT_LEAST_ONE)   # (time, feature)
    first_stride: tuple[int, int] = setting((2, 2), allowed=AT_LEAST_ONE)
    dropout: float = setting(0.5, allowed=BELOW_ONE)


def build(p, input_shape: tuple[int, int], num_labels: int) -> keras.Model:
    import keras
    from keras import layers

    inputs = keras.Input(shape=(*input_shape, 1), name="features")
    x = layers.Conv2D(p.filters, tuple(p.first_kernel), strides=tuple(p.first_stride),
                      padding="same", activation="relu")(inputs)
    x = layers.Dropout(p.dropout)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(num_labels, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="tiny_conv")


ARCHITECTURE = Architecture("tiny_conv", TinyConv, build)
