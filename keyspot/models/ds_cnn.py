"""DS-CNN: the MLPerf Tiny keyword-spotting reference architecture.

A strided convolution, then `blocks` depthwise-separable blocks, global
average pooling and one dense layer. Batch normalisation folds into the
convolutions at conversion, so the int8 model holds only Conv2D,
DepthwiseConv2D, AveragePool2D, Reshape, FullyConnected and Softmax.
"""

from __future__ import annotations

import keras
from keras import layers


def build(p, input_shape: tuple[int, int], num_labels: int) -> keras.Model:
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
