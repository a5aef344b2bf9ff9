"""The int8 model as plain C for keyspot's C engine (export.engine=c).

`generate()` turns the layers c_engine_graph.py reads from the .tflite into
engine_model.c and engine_model.h: the weights, biases, per-channel
multipliers, shifts and offset biases (and the fully connected layers'
double scales) as const arrays, one const parameter struct per layer, and
keyspot_engine_invoke() as a straight-line sequence of calls to the kernels
of firmware/core/engine. Activations live in two static buffers sized here:
each layer reads one and writes the other, or the same one where its kernel
runs in place (depthwise 3x3 and 1x1 convolutions), a RESHAPE moves no
byte; the convolutions work in one static scratch buffer (widened windows,
a depthwise input plane). Nothing is allocated at run time. Pure: same
model, same text. Which kernel form each convolution runs, and the layout of
its constants, is chosen in c_engine_kernels.py and said in a comment above
the layer; only the constants that form reads are written.
"""

from __future__ import annotations

import dataclasses

from keyspot.export import c_engine_kernels as forms
from keyspot.export.c_engine_graph import (
    Conv,
    FullyConnected,
    Graph,
    Layer,
    Pool,
    Reshape,
    Softmax,
    UnsupportedModel,
    read,
)
from keyspot.export.c_text import rows

__all__ = ["EngineSummary", "Plan", "UnsupportedModel", "generate", "plan", "settings_block"]

BUFFERS = ("g_engine_buffer_a", "g_engine_buffer_b")
SCRATCH = "g_engine_scratch"
PER_LINE = {"int8_t": 16, "int32_t": 8, "double": 3, "keyspot_channel_scale": 2}
SIZE = {"int8_t": 1, "int32_t": 4, "double": 8, "keyspot_channel_scale": 16}
KERNELS = {"CONV_2D": "keyspot_conv2d_s8", "DEPTHWISE_CONV_2D": "keyspot_depthwise_conv2d_s8",
           "FULLY_CONNECTED": "keyspot_fully_connected_s8", "AVERAGE_POOL_2D": "keyspot_average_pool_s8",
           "MAX_POOL_2D": "keyspot_max_pool_s8", "SOFTMAX": "keyspot_softmax_s8"}


@dataclasses.dataclass(frozen=True)
class Plan:
    """Which of the two activation buffers holds each tensor, their sizes, and
    the scratch the convolutions work in (bytes, a whole number of words)."""
    buffer_of: dict[int, int]
    sizes: tuple[int, int]
    scratch: int

    @property
    def activation_bytes(self) -> int:
        return sum(self.sizes)

    @property
    def ram_bytes(self) -> int:
        return self.activation_bytes + self.scratch


@dataclasses.dataclass(frozen=True)
class EngineSummary:
    layers: int                   # kernel calls per inference
    buffer_bytes: tuple[int, int]
    scratch_bytes: int
    ram_bytes: int                # both buffers and the scratch
    constant_bytes: int           # flash: weights, biases, multipliers, shifts, scales


def _scratch_bytes(layer: Layer) -> int:
    return 4 * forms.conv_form(layer).scratch_words if isinstance(layer, Conv) else 0


def in_place(layer: Layer) -> bool:
    """Whether a kernel may write its output over its own input, as the
    kernel forms of c_engine_kernels.py allow: a depthwise 3x3 at stride 1
    copies each channel into its plane before writing that channel, and a 1x1
    convolution at stride 1 widens two pixels before writing them, no wider
    than they were."""
    if not isinstance(layer, Conv):
        return False
    form = forms.conv_form(layer)
    if layer.op == "DEPTHWISE_CONV_2D":
        return form.planes and layer.input.shape == layer.output.shape
    return (layer.filter_hw == (1, 1) and layer.stride == (1, 1) and layer.padding == (0, 0)
            and form.window_depth == layer.input.hwc[2] and layer.output.hwc[2] <= layer.input.hwc[2])


def plan(graph: Graph) -> Plan:
    """The input in buffer A; a kernel writes the other buffer than it reads,
    or the same one where it runs in place (`in_place`); a RESHAPE's output
    is its input. Each buffer is as large as the largest tensor it holds; the
    scratch as the most any convolution's kernel form needs
    (c_engine_kernels.py)."""
    buffer_of = {graph.input.index: 0}
    sizes = [graph.input.elements, 0]
    for layer in graph.layers:
        src = buffer_of[layer.input.index]
        dst = src if isinstance(layer, Reshape) or in_place(layer) else 1 - src
        buffer_of[layer.output.index] = dst
        sizes[dst] = max(sizes[dst], layer.output.elements)
    scratch = max([_scratch_bytes(layer) for layer in graph.layers], default=0)
    return Plan(buffer_of, (sizes[0], sizes[1]), scratch)


# ---------------------------------------------------------------- C text

def _array(ctype: str, name: str, values) -> tuple[str, int]:
    """A static const array and its size in bytes; int8_t arrays word-aligned,
    since the kernels load them a word at a time."""
    values = list(values)
    if ctype == "double":
        items = [float(v).hex() for v in values]  # C99 hex floats: the exact double
    elif ctype == "keyspot_channel_scale":
        items = ["{" + ", ".join(str(int(x)) for x in v) + "}" for v in values]
    else:
        items = [str(int(v)) for v in values]
    size = SIZE[ctype] * len(values)
    body = rows(items, PER_LINE[ctype], indent="    ")
    aligned = " KEYSPOT_ALIGNED(4)" if ctype == "int8_t" else ""
    return f"static const {ctype} {name}[{len(values)}]{aligned} = {{\n{body}\n}};\n", size


def _arrays(name: str, arrays) -> tuple[str, int]:
    """`_array` of each (ctype, field, values), named `<name>_<field>`:
    their text and total bytes."""
    parts, total = [], 0
    for ctype, field, values in arrays:
        text, size = _array(ctype, f"{name}_{field}", values)
        parts.append(text)
        total += size
    return "".join(parts), total


def _struct(ctype: str, name: str, fields: list[tuple[str, object]]) -> str:
    body = "".join(f"    .{key} = {value},\n" for key, value in fields)
    return f"static const {ctype} {name} = {{\n{body}}};\n"


def _dims(shape) -> str:
    return "x".join(str(d) for d in shape)


def _conv(layer: Conv, name: str) -> tuple[str, int]:
    in_h, in_w, in_c = layer.input.hwc
    out_h, out_w, out_c = layer.output.hwc
    fh, fw = layer.filter_hw
    form = forms.conv_form(layer)
    if layer.op == "DEPTHWISE_CONV_2D":
        # [1, H, W, O] -> [O, H, W], each channel's taps consecutive.
        arrays = [("int8_t", "filter", layer.filter[0].transpose(2, 0, 1).reshape(-1))]
    else:
        arrays = [("int8_t", "filter", forms.conv_filter(layer, form))]
    if layer.bias is not None and layer.op == "DEPTHWISE_CONV_2D" and not form.planes:
        # The only kernel that adds the bias itself; the others start from offset_bias.
        arrays.append(("int32_t", "bias", layer.bias))
    if form.short_form:
        arrays.append(("keyspot_channel_scale", "channel_scale", forms.channel_scales(layer)))
    else:
        if layer.op == "CONV_2D" or form.planes:
            arrays.append(("int32_t", "offset_bias", forms.even(layer.offset_bias)
                           if layer.op == "CONV_2D" else layer.offset_bias))
        arrays += [("int32_t", "multiplier", layer.multiplier), ("int32_t", "shift", layer.shift)]
    text, total = _arrays(name, arrays)
    named = {field for _, field, _ in arrays}

    def ref(field: str) -> str:
        return f"{name}_{field}" if field in named else "NULL"

    fields = [("input_height", in_h), ("input_width", in_w), ("input_depth", in_c),
              ("output_height", out_h), ("output_width", out_w), ("output_depth", out_c),
              ("filter_height", fh), ("filter_width", fw),
              ("stride_height", layer.stride[0]), ("stride_width", layer.stride[1]),
              ("dilation_height", layer.dilation[0]), ("dilation_width", layer.dilation[1]),
              ("pad_height", layer.padding[0]), ("pad_width", layer.padding[1]),
              ("depth_multiplier", layer.depth_multiplier),
              ("input_offset", -layer.input.zero_point), ("output_offset", layer.output.zero_point),
              ("activation_min", layer.activation_range[0]), ("activation_max", layer.activation_range[1]),
              ("filter", f"{name}_filter"), ("window_depth", form.window_depth), ("bias", ref("bias")),
              ("offset_bias", ref("offset_bias")), ("channel_scale", ref("channel_scale")),
              ("multiplier", ref("multiplier")), ("shift", ref("shift")),
              ("scratch", SCRATCH if form.scratch_words else "NULL")]
    return f"/* {form.describe(layer)} */\n" + text + _struct("keyspot_conv_params", name, fields), total


def _fully_connected(layer: FullyConnected, name: str) -> tuple[str, int]:
    arrays = [("int8_t", "filter", layer.filter.reshape(-1)), ("double", "scale", layer.scale)]
    if layer.bias is not None:
        arrays.insert(1, ("int32_t", "bias", layer.bias))
    text, total = _arrays(name, arrays)
    out_c, depth = layer.filter.shape
    fields = [("batches", layer.batches), ("accum_depth", depth), ("output_depth", out_c),
              ("input_offset", -layer.input.zero_point), ("filter_offset", layer.filter_offset),
              ("output_offset", layer.output.zero_point),
              ("activation_min", layer.activation_range[0]), ("activation_max", layer.activation_range[1]),
              ("filter", f"{name}_filter"), ("bias", f"{name}_bias" if layer.bias is not None else "NULL"),
              ("scale", f"{name}_scale")]
    return text + _struct("keyspot_fully_connected_params", name, fields), total


def _pool(layer: Pool, name: str) -> tuple[str, int]:
    in_h, in_w, channels = layer.input.hwc
    out_h, out_w, _ = layer.output.hwc
    fields = [("input_height", in_h), ("input_width", in_w), ("depth", channels),
              ("output_height", out_h), ("output_width", out_w),
              ("filter_height", layer.filter_hw[0]), ("filter_width", layer.filter_hw[1]),
              ("stride_height", layer.stride[0]), ("stride_width", layer.stride[1]),
              ("pad_height", layer.padding[0]), ("pad_width", layer.padding[1]),
              ("activation_min", layer.activation_range[0]), ("activation_max", layer.activation_range[1])]
    return _struct("keyspot_pool_params", name, fields), 0


def _softmax(layer: Softmax, name: str) -> tuple[str, int]:
    depth = layer.input.shape[-1]
    fields = [("outer_size", layer.input.elements // depth), ("depth", depth),
              ("input_multiplier", layer.input_multiplier), ("input_left_shift", layer.input_left_shift),
              ("diff_min", layer.diff_min)]
    return _struct("keyspot_softmax_params", name, fields), 0


def _describe(layer: Layer) -> str:
    text = f"operator {layer.index}: {layer.op} {_dims(layer.input.shape)} -> {_dims(layer.output.shape)}"
    if isinstance(layer, Conv):
        text += (f", {_dims(layer.filter_hw)} filter, stride {_dims(layer.stride)}, "
                 f"dilation {_dims(layer.dilation)}, padding {_dims(layer.padding)}")
    elif isinstance(layer, Pool):
        text += f", {_dims(layer.filter_hw)} window, stride {_dims(layer.stride)}, padding {_dims(layer.padding)}"
    elif isinstance(layer, Reshape):
        text += ", no data moves"
    return text


def declared_bytes(size: int) -> int:
    """An activation buffer's size as engine_model.h declares it: C has no
    empty arrays."""
    return max(size, 1)


def engine_model_h(comment: str, p: Plan, layers: int) -> str:
    guard = "KEYSPOT_ENGINE_MODEL_H_"
    return (f"{comment}#ifndef {guard}\n#define {guard}\n\n"
            '#include "engine/engine.h"\n\n'
            "/* The two activation buffers, planned at export: the input starts in A,\n"
            "   every kernel reads one buffer and writes the other, or the same one\n"
            "   where it runs in place. */\n"
            f"#define KEYSPOT_ENGINE_BUFFER_A_BYTES {declared_bytes(p.sizes[0])}\n"
            f"#define KEYSPOT_ENGINE_BUFFER_B_BYTES {declared_bytes(p.sizes[1])}\n"
            "/* The convolutions' working memory, int32 words (0: none needs any). */\n"
            f"#define KEYSPOT_ENGINE_SCRATCH_BYTES {p.scratch}\n\n"
            "/* Kernel calls per inference. */\n"
            f"#define KEYSPOT_ENGINE_LAYERS {layers}\n\n"
            f"#endif  /* {guard} */\n")


def engine_model_c(comment: str, graph: Graph, p: Plan) -> tuple[str, int]:
    definitions, calls, constant_bytes = [], [], 0
    emit = {Conv: _conv, FullyConnected: _fully_connected, Pool: _pool, Softmax: _softmax}
    for layer in graph.layers:
        name = f"op{layer.index}"
        src, dst = BUFFERS[p.buffer_of[layer.input.index]], BUFFERS[p.buffer_of[layer.output.index]]
        calls.append(f"    /* {_describe(layer)} */\n")
        if not isinstance(layer, Reshape):
            text, size = emit[type(layer)](layer, name)
            definitions.append(f"/* {_describe(layer)} */\n{text}\n")
            constant_bytes += size
            calls.append(f"    {KERNELS[layer.op]}(&{name}, {src}, {dst});\n")
        calls.append(f"    TRACE_LAYER({layer.index}, {layer.output.index}, {dst}, {layer.output.elements});\n")
    out = BUFFERS[p.buffer_of[graph.output.index]]
    text = (f"{comment}"
            "#include <stddef.h>\n#include <stdint.h>\n\n"
            '#include "engine_model.h"\n#include "engine/kernels.h"\n\n'
            "#ifdef KEYSPOT_ENGINE_TRACE\n"
            "#define TRACE_LAYER(op, tensor, data, bytes) keyspot_engine_trace(op, tensor, data, bytes)\n"
            "#else\n#define TRACE_LAYER(op, tensor, data, bytes) ((void)0)\n#endif\n\n"
            f"static int8_t {BUFFERS[0]}[KEYSPOT_ENGINE_BUFFER_A_BYTES];\n"
            f"static int8_t {BUFFERS[1]}[KEYSPOT_ENGINE_BUFFER_B_BYTES];\n"
            + (f"static int32_t {SCRATCH}[KEYSPOT_ENGINE_SCRATCH_BYTES / 4];\n" if p.scratch else "") + "\n"
            f"{''.join(definitions)}"
            f"int8_t *keyspot_engine_input(void)\n{{\n    return {BUFFERS[p.buffer_of[graph.input.index]]};\n}}\n\n"
            f"const int8_t *keyspot_engine_output(void)\n{{\n    return {out};\n}}\n\n"
            f"void keyspot_engine_invoke(void)\n{{\n{''.join(calls)}}}\n")
    return text, constant_bytes


def settings_block(summary: EngineSummary) -> str:
    """What model_settings.h says about the runtime when the engine is C."""
    return ("/* The model runs on keyspot's C engine (firmware/core/engine) from the\n"
            "   generated engine_model.c: no TFLite Micro interpreter, no tensor arena. */\n"
            "#define KEYSPOT_ENGINE_C 1\n\n"
            "/* RAM of the engine: two activation buffers and a convolution's input\n"
            "   window, planned at export. */\n"
            f"#define KEYSPOT_ENGINE_RAM_BYTES {summary.ram_bytes}\n")


def generate(model: bytes, comment: str) -> tuple[dict[str, str], EngineSummary]:
    """engine_model.c and engine_model.h for an int8 .tflite, and what they
    hold; UnsupportedModel if the engine cannot run it exactly."""
    graph = read(model)
    p = plan(graph)
    kernels = sum(not isinstance(layer, Reshape) for layer in graph.layers)
    source, constant_bytes = engine_model_c(comment, graph, p)
    summary = EngineSummary(layers=kernels, buffer_bytes=p.sizes, scratch_bytes=p.scratch,
                            ram_bytes=p.ram_bytes, constant_bytes=constant_bytes)
    return {"engine_model.h": engine_model_h(comment, p, kernels), "engine_model.c": source}, summary
