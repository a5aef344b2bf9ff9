"""Read an int8 .tflite into the chain of layers keyspot's C engine runs.

Each supported operator becomes a layer holding its constant tensors and
every number its kernel needs, computed as TFLite's Prepare() does
(c_engine_quant.py). The model must be one chain: each layer reads the
previous one's output. The SHAPE -> STRIDED_SLICE -> PACK computation that
Keras' Flatten leaves in front of a RESHAPE is dropped: it only computes the
reshape's target shape, which the flatbuffer already holds and which does not
move a byte. Anything else the engine cannot run exactly as TFLite does
stops the export with an UnsupportedModel naming the operator, the option
or the tensor.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from keyspot.export import c_engine_quant as quant
from keyspot.export.tflite_model import TYPE_NAMES, builtin_code, enum_names, is_flatbuffer, op_name, schema

ACTIVATION_NAMES = enum_names(schema.ActivationFunctionType)
PADDING_NAMES = enum_names(schema.Padding)

COMPUTE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D",
               "SOFTMAX", "RESHAPE")
# Operators that only compute a RESHAPE's target shape from static shapes.
SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK")


class UnsupportedModel(ValueError):
    """The model uses an operator, option or tensor type the C engine does not run."""


@dataclasses.dataclass(frozen=True)
class Activation:
    """An int8 activation tensor, quantised per tensor."""
    index: int
    shape: tuple[int, ...]
    scale: float
    zero_point: int

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def hwc(self) -> tuple[int, int, int]:
        """(height, width, channels) of a [1, H, W, C] tensor."""
        return self.shape[1], self.shape[2], self.shape[3]


@dataclasses.dataclass(frozen=True)
class Layer:
    index: int                 # operator index in the subgraph
    op: str                    # TFLite builtin name
    input: Activation
    output: Activation


@dataclasses.dataclass(frozen=True)
class Conv(Layer):
    """CONV_2D (filter [O, H, W, I]) or DEPTHWISE_CONV_2D (filter [1, H, W, O])."""
    filter: np.ndarray
    bias: np.ndarray | None
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int]   # top, left
    depth_multiplier: int
    activation_range: tuple[int, int]
    multiplier: tuple[int, ...]
    shift: tuple[int, ...]
    # bias + input_offset * sum(filter), per output channel: the accumulator's
    # start where the window lies inside the input (kernels.h)
    offset_bias: tuple[int, ...]

    @property
    def filter_hw(self) -> tuple[int, int]:
        return int(self.filter.shape[1]), int(self.filter.shape[2])


@dataclasses.dataclass(frozen=True)
class FullyConnected(Layer):
    filter: np.ndarray         # [output_depth, accum_depth]
    bias: np.ndarray | None
    filter_offset: int
    activation_range: tuple[int, int]
    scale: tuple[float, ...]   # per output channel, double

    @property
    def batches(self) -> int:
        return self.input.elements // self.filter.shape[1]


@dataclasses.dataclass(frozen=True)
class Pool(Layer):
    """AVERAGE_POOL_2D or MAX_POOL_2D."""
    filter_hw: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    activation_range: tuple[int, int]


@dataclasses.dataclass(frozen=True)
class Softmax(Layer):
    input_multiplier: int
    input_left_shift: int
    diff_min: int


@dataclasses.dataclass(frozen=True)
class Reshape(Layer):
    """Same bytes, another shape: no kernel call."""


@dataclasses.dataclass(frozen=True)
class Graph:
    input: Activation
    output: Activation
    layers: tuple[Layer, ...]


class _Reader:
    def __init__(self, model: bytes):
        if not is_flatbuffer(model):
            raise UnsupportedModel("not a TFLite flatbuffer (no TFL3 identifier)")
        self.raw = bytes(model)
        self.model = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
        if len(self.model.subgraphs or []) != 1:
            raise UnsupportedModel(f"the model has {len(self.model.subgraphs or [])} subgraphs; "
                                   "the C engine runs models with exactly one")
        self.sg = self.model.subgraphs[0]
        self.ops = [self._op_name(op) for op in self.sg.operators or []]

    # ------------------------------------------------------------ naming

    def _op_name(self, op) -> str:
        code = self.model.operatorCodes[op.opcodeIndex]
        number = builtin_code(code.builtinCode, code.deprecatedBuiltinCode)
        if number == schema.BuiltinOperator.CUSTOM:
            return f"custom operator {(code.customCode or b'?').decode('utf-8', 'replace')!r}"
        return op_name(number)

    def tensor_name(self, index: int) -> str:
        return (self.sg.tensors[index].name or b"").decode("utf-8", "replace")

    def where(self, i: int) -> str:
        return f"operator {i} ({self.ops[i]})"

    def fail(self, i: int, what: str):
        raise UnsupportedModel(f"{self.where(i)}: {what}; export it with export.engine=tflm instead")

    # ------------------------------------------------------------ tensors

    def constant(self, i: int, index: int, role: str, dtype: str) -> np.ndarray:
        t = self.sg.tensors[index]
        buffer = self.model.buffers[t.buffer]
        if buffer.data is not None and len(buffer.data):
            data = np.asarray(buffer.data, np.uint8).tobytes()
        elif buffer.offset > 1:
            data = self.raw[buffer.offset:buffer.offset + buffer.size]
        else:
            self.fail(i, f"{role} tensor {self.tensor_name(index)!r} is not a constant")
        type_name = TYPE_NAMES.get(t.type, str(t.type))
        if type_name != dtype.upper():
            self.fail(i, f"{role} tensor {self.tensor_name(index)!r} is {type_name}, not {dtype.upper()}")
        if t.sparsity is not None:
            self.fail(i, f"{role} tensor {self.tensor_name(index)!r} is sparse")
        shape = tuple(int(d) for d in t.shape)
        return np.frombuffer(data, np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)

    def quantization(self, i: int, index: int, role: str) -> tuple[np.ndarray, np.ndarray]:
        t = self.sg.tensors[index]
        q = t.quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            self.fail(i, f"{role} tensor {self.tensor_name(index)!r} is not quantised")
        if q.detailsType:
            self.fail(i, f"{role} tensor {self.tensor_name(index)!r} uses custom quantisation")
        zero = np.zeros(len(q.scale), np.int64) if q.zeroPoint is None else np.asarray(q.zeroPoint, np.int64)
        return np.asarray(q.scale, np.float32), zero

    def activation(self, i: int, index: int, role: str) -> Activation:
        t = self.sg.tensors[index]
        type_name = TYPE_NAMES.get(t.type, str(t.type))
        if type_name != "INT8":
            self.fail(i, f"{role} tensor {self.tensor_name(index)!r} is {type_name}; "
                         "the C engine runs int8 activations only")
        scale, zero = self.quantization(i, index, role)
        if len(scale) != 1:
            self.fail(i, f"{role} tensor {self.tensor_name(index)!r} is quantised per channel")
        return Activation(int(index), tuple(int(d) for d in t.shape), float(scale[0]), int(zero[0]))

    def image(self, i: int, t: Activation, role: str) -> Activation:
        if len(t.shape) != 4 or t.shape[0] != 1:
            self.fail(i, f"{role} tensor {self.tensor_name(t.index)!r} has shape {list(t.shape)}, "
                         "not [1, height, width, channels]")
        return t

    def fused(self, i: int, options) -> str:
        name = ACTIVATION_NAMES.get(options.fusedActivationFunction, str(options.fusedActivationFunction))
        if name not in quant.ACTIVATIONS:
            self.fail(i, f"fused_activation_function={name} is not supported (only "
                         f"{', '.join(quant.ACTIVATIONS)})")
        return name

    def padding(self, i: int, options) -> str:
        name = PADDING_NAMES.get(options.padding, str(options.padding))
        if name not in ("SAME", "VALID"):
            self.fail(i, f"padding={name} is not supported")
        return name

    def options(self, i: int, op, kind):
        options = op.builtinOptions
        if not isinstance(options, kind):
            self.fail(i, f"expected {kind.__name__[:-1]}, found {type(options).__name__}")
        return options

    def bias(self, i: int, op, channels: int) -> np.ndarray | None:
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            return None
        bias = self.constant(i, op.inputs[2], "bias", "int32").reshape(-1)
        if len(bias) != channels:
            self.fail(i, f"bias tensor {self.tensor_name(op.inputs[2])!r} has {len(bias)} values "
                         f"for {channels} output channels")
        return bias

    def symmetric_scales(self, i: int, index: int, channels: int) -> np.ndarray:
        scales, zeros = self.quantization(i, index, "filter")
        if np.any(zeros != 0):
            self.fail(i, f"filter tensor {self.tensor_name(index)!r} has a non-zero zero point")
        if len(scales) not in (1, channels):
            self.fail(i, f"filter tensor {self.tensor_name(index)!r} has {len(scales)} scales "
                         f"for {channels} output channels")
        return np.broadcast_to(scales, (channels,))

    def check_shape(self, i: int, out: Activation, expected: tuple[int, ...]) -> None:
        if tuple(out.shape) != tuple(expected):
            self.fail(i, f"output tensor {self.tensor_name(out.index)!r} has shape {list(out.shape)}, "
                         f"TFLite would compute {list(expected)}")

    # ------------------------------------------------------------ layers

    def conv(self, i: int, op) -> Conv:
        depthwise = self.ops[i] == "DEPTHWISE_CONV_2D"
        o = self.options(i, op, schema.DepthwiseConv2DOptionsT if depthwise else schema.Conv2DOptionsT)
        x = self.image(i, self.activation(i, op.inputs[0], "input"), "input")
        y = self.image(i, self.activation(i, op.outputs[0], "output"), "output")
        w = self.constant(i, op.inputs[1], "filter", "int8")
        if w.ndim != 4:
            self.fail(i, f"filter tensor {self.tensor_name(op.inputs[1])!r} has shape {list(w.shape)}")
        in_h, in_w, in_c = x.hwc
        if depthwise:
            out_c = w.shape[3]
            if w.shape[0] != 1 or out_c % in_c:
                self.fail(i, f"filter shape {list(w.shape)} does not fit {in_c} input channels")
            multiplier = out_c // in_c
            if o.depthMultiplier not in (0, multiplier):
                self.fail(i, f"depth_multiplier={o.depthMultiplier} but the filter makes "
                             f"{out_c} channels of {in_c}")
        else:
            out_c = w.shape[0]
            if w.shape[3] != in_c:
                self.fail(i, f"filter has {w.shape[3]} input channels for an input of {in_c} "
                             "(grouped convolution is not supported)")
            multiplier = 1
        stride = (o.strideH, o.strideW)
        dilation = (o.dilationHFactor, o.dilationWFactor)
        if min(stride) < 1 or min(dilation) < 1:
            self.fail(i, f"stride {stride} and dilation {dilation} must be positive")
        pad = self.padding(i, o)
        fh, fw = w.shape[1], w.shape[2]
        out_h = quant.output_size(pad, in_h, fh, stride[0], dilation[0])
        out_w = quant.output_size(pad, in_w, fw, stride[1], dilation[1])
        self.check_shape(i, y, (1, out_h, out_w, out_c))
        scales = self.symmetric_scales(i, op.inputs[1], out_c)
        multipliers, shifts = quant.per_channel_multipliers(
            quant.conv_output_scales(x.scale, scales, y.scale))
        bias = self.bias(i, op, out_c)
        sums = (w[0].reshape(-1, out_c).sum(0) if depthwise else w.reshape(out_c, -1).sum(1)).astype(np.int64)
        offset_bias = (0 if bias is None else bias.astype(np.int64)) - x.zero_point * sums
        if np.abs(offset_bias).max() >= 2**31:
            self.fail(i, "bias + input offset * filter sum does not fit int32")
        return Conv(
            index=i, op=self.ops[i], input=x, output=y, filter=w, bias=bias,
            offset_bias=tuple(int(v) for v in offset_bias),
            stride=stride, dilation=dilation,
            padding=(quant.padding_before(in_h, fh, stride[0], dilation[0], out_h),
                     quant.padding_before(in_w, fw, stride[1], dilation[1], out_w)),
            depth_multiplier=multiplier,
            activation_range=quant.activation_range(self.fused(i, o), y.scale, y.zero_point),
            multiplier=tuple(multipliers), shift=tuple(shifts))

    def fully_connected(self, i: int, op) -> FullyConnected:
        o = self.options(i, op, schema.FullyConnectedOptionsT)
        if o.weightsFormat != schema.FullyConnectedOptionsWeightsFormat.DEFAULT:
            self.fail(i, f"weights_format={o.weightsFormat} is not supported (only DEFAULT)")
        x = self.activation(i, op.inputs[0], "input")
        y = self.activation(i, op.outputs[0], "output")
        w = self.constant(i, op.inputs[1], "filter", "int8")
        if w.ndim != 2 or x.elements % w.shape[1]:
            self.fail(i, f"filter shape {list(w.shape)} does not fit an input of {x.elements} values")
        out_c = w.shape[0]
        if y.elements != x.elements // w.shape[1] * out_c:
            self.fail(i, f"output tensor {self.tensor_name(y.index)!r} has {y.elements} values, "
                         f"expected {x.elements // w.shape[1] * out_c}")
        scales, zeros = self.quantization(i, op.inputs[1], "filter")
        per_channel = len(scales) > 1
        if per_channel and (len(scales) != out_c or np.any(zeros != 0)):
            self.fail(i, f"filter tensor {self.tensor_name(op.inputs[1])!r} has {len(scales)} scales "
                         f"for {out_c} outputs or a non-zero zero point")
        return FullyConnected(
            index=i, op=self.ops[i], input=x, output=y, filter=w, bias=self.bias(i, op, out_c),
            filter_offset=0 if per_channel else -int(zeros[0]),
            activation_range=quant.activation_range(self.fused(i, o), y.scale, y.zero_point),
            scale=tuple(quant.conv_output_scales(x.scale, np.broadcast_to(scales, (out_c,)), y.scale)))

    def same_quantization(self, i: int, x: Activation, y: Activation) -> None:
        if np.float32(x.scale) != np.float32(y.scale) or x.zero_point != y.zero_point:
            self.fail(i, f"output tensor {self.tensor_name(y.index)!r} is quantised "
                         f"({y.scale:g}, {y.zero_point}) unlike its input ({x.scale:g}, {x.zero_point})")

    def pool(self, i: int, op) -> Pool:
        o = self.options(i, op, schema.Pool2DOptionsT)
        x = self.image(i, self.activation(i, op.inputs[0], "input"), "input")
        y = self.image(i, self.activation(i, op.outputs[0], "output"), "output")
        self.same_quantization(i, x, y)
        in_h, in_w, channels = x.hwc
        stride, window = (o.strideH, o.strideW), (o.filterHeight, o.filterWidth)
        if min(stride) < 1 or min(window) < 1:
            self.fail(i, f"stride {stride} and filter size {window} must be positive")
        pad = self.padding(i, o)
        out_h = quant.output_size(pad, in_h, window[0], stride[0])
        out_w = quant.output_size(pad, in_w, window[1], stride[1])
        self.check_shape(i, y, (1, out_h, out_w, channels))
        return Pool(index=i, op=self.ops[i], input=x, output=y, filter_hw=window, stride=stride,
                    padding=(quant.padding_before(in_h, window[0], stride[0], 1, out_h),
                             quant.padding_before(in_w, window[1], stride[1], 1, out_w)),
                    activation_range=quant.activation_range(self.fused(i, o), y.scale, y.zero_point))

    def softmax(self, i: int, op) -> Softmax:
        o = self.options(i, op, schema.SoftmaxOptionsT)
        x = self.activation(i, op.inputs[0], "input")
        y = self.activation(i, op.outputs[0], "output")
        if y.zero_point != -128 or abs(np.float32(y.scale) - np.float32(1 / 256)) > np.float32(0.001 / 256):
            self.fail(i, f"output tensor {self.tensor_name(y.index)!r} is quantised ({y.scale:g}, "
                         f"{y.zero_point}); TFLite's int8 softmax needs (1/256, -128)")
        if x.shape != y.shape or not x.shape:
            self.fail(i, f"input shape {list(x.shape)} and output shape {list(y.shape)} differ")
        try:
            multiplier, left_shift, diff_min = quant.softmax_scaling(o.beta, x.scale)
        except ValueError as err:
            self.fail(i, str(err))
        return Softmax(index=i, op=self.ops[i], input=x, output=y, input_multiplier=multiplier,
                       input_left_shift=left_shift, diff_min=diff_min)

    def reshape(self, i: int, op) -> Reshape:
        x = self.activation(i, op.inputs[0], "input")
        y = self.activation(i, op.outputs[0], "output")
        if x.elements != y.elements:
            self.fail(i, f"reshapes {list(x.shape)} to {list(y.shape)}")
        self.same_quantization(i, x, y)
        return Reshape(index=i, op=self.ops[i], input=x, output=y)

    # ------------------------------------------------------------ the chain

    def consumers(self) -> dict[int, list[tuple[int, int]]]:
        """tensor -> [(operator, input slot)]."""
        users: dict[int, list[tuple[int, int]]] = {}
        for i, op in enumerate(self.sg.operators or []):
            for slot, t in enumerate(op.inputs if op.inputs is not None else []):
                if t >= 0:
                    users.setdefault(int(t), []).append((i, slot))
        return users

    def shape_ops(self, users) -> set[int]:
        """Operators that only compute a RESHAPE's target shape."""
        helpers = {i for i, name in enumerate(self.ops) if name in SHAPE_OPS}
        for i in sorted(helpers):
            for t in self.sg.operators[i].outputs:
                for j, slot in users.get(int(t), []):
                    if not (j in helpers or (self.ops[j] == "RESHAPE" and slot == 1)):
                        self.fail(i, f"its output feeds {self.where(j)}; the C engine folds "
                                     f"{', '.join(SHAPE_OPS)} only where they compute a RESHAPE's shape")
        return helpers

    def read(self) -> Graph:
        sg = self.sg
        if len(sg.inputs) != 1 or len(sg.outputs) != 1:
            raise UnsupportedModel(f"expected one input and one output, got {len(sg.inputs)} and "
                                   f"{len(sg.outputs)}")
        for i, name in enumerate(self.ops):
            if name not in COMPUTE_OPS and name not in SHAPE_OPS:
                self.fail(i, f"the C engine has no kernel for {name} (it runs "
                             f"{', '.join(COMPUTE_OPS)})")
        users = self.consumers()
        helpers = self.shape_ops(users)
        build = {"CONV_2D": self.conv, "DEPTHWISE_CONV_2D": self.conv,
                 "FULLY_CONNECTED": self.fully_connected, "AVERAGE_POOL_2D": self.pool,
                 "MAX_POOL_2D": self.pool, "SOFTMAX": self.softmax, "RESHAPE": self.reshape}
        model_input = self.activation_or_fail(int(sg.inputs[0]), "model input")
        current, layers = model_input.index, []
        for i, op in enumerate(sg.operators or []):
            if i in helpers:
                continue
            if int(op.inputs[0]) != current:
                self.fail(i, f"reads tensor {self.tensor_name(int(op.inputs[0]))!r}, not the output of "
                             "the layer before it; the C engine runs a single chain of layers")
            readers = [j for j, slot in users.get(current, []) if j not in helpers or
                       self.ops[j] != "SHAPE"]
            if readers != [i]:
                self.fail(i, f"tensor {self.tensor_name(current)!r} is also read by "
                             f"{', '.join(self.where(j) for j in readers if j != i)}; "
                             "the C engine runs a single chain of layers")
            if len(op.outputs) != 1:
                self.fail(i, f"has {len(op.outputs)} outputs")
            layers.append(build[self.ops[i]](i, op))
            current = int(op.outputs[0])
        if current != int(sg.outputs[0]):
            raise UnsupportedModel(f"the model output {self.tensor_name(int(sg.outputs[0]))!r} is not "
                                   "the last layer's output")
        output = layers[-1].output if layers else model_input
        return Graph(input=model_input, output=output, layers=tuple(layers))

    def activation_or_fail(self, index: int, role: str) -> Activation:
        t = self.sg.tensors[index]
        type_name = TYPE_NAMES.get(t.type, str(t.type))
        q = t.quantization
        if type_name != "INT8" or q is None or q.scale is None or len(q.scale) != 1:
            raise UnsupportedModel(f"the {role} {self.tensor_name(index)!r} is {type_name}, not int8 "
                                   "quantised per tensor")
        zero = 0 if q.zeroPoint is None else int(q.zeroPoint[0])
        return Activation(int(index), tuple(int(d) for d in t.shape), float(q.scale[0]), zero)


def read(model: bytes) -> Graph:
    """The chain of layers of an int8 .tflite, or UnsupportedModel saying why not."""
    return _Reader(model).read()
