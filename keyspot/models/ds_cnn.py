"""DS-CNN: the MLPerf Tiny keyword-spotting reference architecture.

A strided convolution, then `blocks` depthwise-separable blocks, global
average pooling and one dense layer. Batch normalisation folds into the
convolutions at conversion, so the int8 model holds only Conv2D,
DepthwiseConv2D, AveragePool2D, Reshape, FullyConnected and Softmax.
"""

from __future__ import annotations

import dataclasses
import typing

from keyspot.models import Architecture
from keyspot.schema import AT_LEAST_ONE, BELOW_ONE, NOT_NEGATIVE, setting

if typing.TYPE_CHECKING:
    import keras


@dataclasses.dataclass
class DsCnn:
    """DS-CNN's hyperparameters; the defaults are DS-CNN S (conf/model/ds_cnn_s.yaml)."""
    # This model's name: its conf/model file, the Keras model's name where the
    # architecture uses it, and part of the MLflow registered model's name.
    name: str = "ds_cnn_s"
    architecture: str = "ds_cnn"
    filters: int = setting(64, allowed=AT_LEAST_ONE)       # of every convolution
    blocks: int = setting(4, allowed=NOT_NEGATIVE)         # depthwise-separable blocks
    first_kernel: tuple[int, int] = setting((10, 4), allowed=AT_LEAST_ONE)   # (time, feature)
    first_stride: tuple[int, int] = setting((2, 2), allowed=AT_LEAST_ONE)
    dropout: float = setting(0.2, allowed=BELOW_ONE)       # after the first convolution; twice this before the pool


def build(p, input_shape: tuple[int, int], num_labels: int) -> keras.Model:
    import keras
    from keras import layers

    inputs = keras.Input(shape=(*input_shape, 1), name="features")
    x = layers.Conv2D(p.filters, tuple(p.first_kernel), strides=tuple(p.first_stride),
                      padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(p.dropout)(x)
    for _ in range(p.blocks):
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Conv2D(p.filters, 1, use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.Dropout(p.dropout * 2)(x)
    # A pool over the whole map rather than GlobalAveragePooling2D, which
    # converts to MEAN: AveragePool2D is what the microcontroller kernels have.
    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]))(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(num_labels, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=p.name)


ARCHITECTURE = Architecture("ds_cnn", DsCnn, build)
