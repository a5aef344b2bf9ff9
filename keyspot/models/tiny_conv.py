"""tiny_conv: the model of TensorFlow Lite Micro's micro_speech example.

One strided convolution and one dense layer; a few kilobytes in int8.
"""

from __future__ import annotations

import keras
from keras import layers


def build(p, input_shape: tuple[int, int], num_labels: int) -> keras.Model:
    inputs = keras.Input(shape=(*input_shape, 1), name="features")
    x = layers.Conv2D(p.filters, tuple(p.first_kernel), strides=tuple(p.first_stride),
                      padding="same", activation="relu")(inputs)
    x = layers.Dropout(p.dropout)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(num_labels, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="tiny_conv")
