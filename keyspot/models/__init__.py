"""Model architectures, one module each, looked up by name."""

from __future__ import annotations

from collections.abc import Callable

from keyspot.models import cnn, ds_cnn, tiny_conv

# model.name -> build(params.model, input_shape, num_labels) -> keras.Model.
# conf/model/<name>.yaml holds each one's size; DS-CNN S and M share a builder.
REGISTRY: dict[str, Callable] = {
    "ds_cnn_s": ds_cnn.build,
    "ds_cnn_m": ds_cnn.build,
    "tiny_conv": tiny_conv.build,
    "cnn": cnn.build,
}


def build(model_params, input_shape: tuple[int, int], num_labels: int):
    try:
        builder = REGISTRY[model_params.name]
    except KeyError:
        raise ValueError(f"model.name: unknown model {model_params.name!r}; "
                         f"registered: {', '.join(sorted(REGISTRY))}") from None
    return builder(model_params, input_shape, num_labels)


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
