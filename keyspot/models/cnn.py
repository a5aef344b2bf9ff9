"""cnn: a plain convolutional network with max pooling.

`blocks` stages of Conv2D + batch norm + ReLU + 2x2 max pooling, the first
with `first_kernel`/`first_stride` and later ones 3x3, doubling the filters
each stage; then one dense layer. Batch normalisation folds into the
convolutions at conversion, so the int8 model holds Conv2D, MaxPool2D,
Reshape, FullyConnected and Softmax.
"""

from __future__ import annotations

import dataclasses
import typing

from keyspot.models import Architecture
from keyspot.schema import AT_LEAST_ONE, BELOW_ONE, setting

if typing.TYPE_CHECKING:
    import keras


@dataclasses.dataclass
class Cnn:
    """The plain CNN's hyperparameters."""
    # This model's name: its conf/model file, the Keras model's name where the
    # architecture uses it, and part of the MLflow registered model's name.
    name: str = "cnn"
    architecture: str = "cnn"
    filters: int = setting(16, allowed=AT_LEAST_ONE)       # of the first stage, doubling each stage
    blocks: int = setting(2, allowed=AT_LEAST_ONE)         # convolution + max-pool stages
    first_kernel: tuple[int, int] = setting((10, 4), allowed=AT_LEAST_ONE)   # (time, feature)
    first_stride: tuple[int, int] = setting((1, 1), allowed=AT_LEAST_ONE)
    dropout: float = setting(0.2, allowed=BELOW_ONE)       # before the dense layer


def build(p, input_shape: tuple[int, int], num_labels: int) -> keras.Model:
    import keras
    from keras import layers

    inputs = keras.Input(shape=(*input_shape, 1), name="features")
    x = inputs
    for i in range(max(p.blocks, 1)):
        kernel, stride = ((tuple(p.first_kernel), tuple(p.first_stride)) if i == 0 else (3, 1))
        x = layers.Conv2D(p.filters * 2 ** i, kernel, strides=stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        # Pool only while there is something to pool (narrow feature maps).
        pool = tuple(2 if d >= 2 else 1 for d in x.shape[1:3])
        x = layers.MaxPooling2D(pool_size=pool)(x)
    x = layers.Dropout(p.dropout)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(num_labels, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="cnn")


ARCHITECTURE = Architecture("cnn", Cnn, build)
