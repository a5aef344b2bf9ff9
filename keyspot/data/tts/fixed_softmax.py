"""Softmax summed in one order on every x86-64 CPU, for the ONNX voices.

ONNX Runtime picks its float kernels by CPU when it loads. Its Softmax sums
a row's exponentials in SIMD lanes: eight on a CPU with AVX2, sixteen on
one with AVX-512, and then across the lanes, so a row longer than 16 sums in
another order and gets other last bits. Piper's attention rows are as long
as what is said, and VITS draws its durations from what follows, so a
longer take came out with other samples (even another length) on an AVX-512
CPU than on an AVX2 one, and so did every clip with it in its babble.

`fixed_order_softmax` rewrites each Softmax of a model into ONNX operators
that compute what ONNX Runtime's AVX-512 Softmax computes, in its order:
the row's maximum, the exponentials of the differences (clamped below as
that kernel clamps them), a running sum per lane of 16 (CumSum, which adds
in order), then the lanes added as that kernel adds them, and each
exponential times the reciprocal of the sum. None of those operators sums
in an order that depends on the CPU, and their exponential is the same
polynomial on AVX2 and AVX-512, so the model gives the samples an AVX-512
CPU gave before, now on either. The order is AVX-512's so that the
datasets fetched on AVX-512 machines stay what they were.

CPUs without FMA (SSE only, or AVX without it) still differ: their matrix
products round each multiply before adding.
"""

from __future__ import annotations

import numpy as np

LANES = 16
# Told apart from takes spoken with ONNX Runtime's own Softmax (speech_cache).
REVISION = f"Softmax summed in {LANES} lanes"
# Where ONNX Runtime's sum of exponentials clamps exp's argument (x - max):
# MLAS's LowerRangeSumExp, -88.3762626647949 as a float32.
LOWER_RANGE = -88.3762626647949
_PREFIX = "keyspot_fixed_softmax"


class _Builder:
    """Nodes for one model: the first node of each rewrite takes the
    Softmax's place and the rest go after every node of the model, so that
    each of the model's nodes keeps its index. ONNX Runtime seeds a random
    operator without a seed (VITS's noise) from the session's seed plus the
    node's index, so moving a node would change what Piper draws."""

    def __init__(self, graph, opset: int):
        from onnx import numpy_helper

        self.opset = opset
        self.appended = []
        consts = {"lower": np.float32(LOWER_RANGE), "lanes": np.array([LANES], np.int64),
                  "half": np.array([LANES // 2], np.int64), "tail": np.array([-1, LANES], np.int64),
                  "last_axis": np.array([-1], np.int64), "lanes_axis": np.array(-2, np.int64),
                  "last": np.array(-1, np.int64),
                  "i0": np.array([0], np.int64), "i1": np.array([1], np.int64),
                  "i2": np.array([2], np.int64), "end": np.array([2**62], np.int64)}
        self.const = {}
        for name, value in consts.items():
            self.const[name] = f"{_PREFIX}/{name}"
            graph.initializer.append(numpy_helper.from_array(value, self.const[name]))

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        from onnx import helper

        self.appended.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def softmax(self, x: str, y: str, name: str):
        """Add the nodes for one Softmax; return the one that takes its place."""
        from onnx import TensorProto, helper

        first = len(self.appended)
        c, n = self.const, self.node
        p = f"{_PREFIX}/{name}/"
        if self.opset >= 18:
            peak = n("ReduceMax", [x, c["last_axis"]], p + "max", keepdims=1)
        else:
            peak = n("ReduceMax", [x], p + "max", axes=[-1], keepdims=1)
        shifted = n("Max", [n("Sub", [x, peak], p + "x_minus_max"), c["lower"]], p + "clamped")
        exps = n("Exp", [shifted], p + "exp")
        # Pad the row with zeros to whole lanes and lay it out [..., chunks, lanes].
        shape = n("Shape", [exps], p + "shape")
        length = n("Slice", [shape, c["last_axis"], c["end"]], p + "length")
        leading = n("Slice", [shape, c["i0"], c["last_axis"]], p + "leading")
        short = n("Mod", [n("Sub", [c["lanes"], n("Mod", [length, c["lanes"]], p + "rem")], p + "gap"),
                          c["lanes"]], p + "pad")
        zeros = n("ConstantOfShape", [n("Concat", [leading, short], p + "zeros_shape", axis=0)], p + "zeros",
                  value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]))
        padded = n("Concat", [exps, zeros], p + "padded", axis=-1)
        chunks = n("Reshape", [padded, n("Concat", [leading, c["tail"]], p + "chunks_shape", axis=0)],
                   p + "chunks")
        # Each lane's running sum over the chunks, in order; its last is the lane's sum.
        lanes = n("Gather", [n("CumSum", [chunks, c["lanes_axis"]], p + "running"), c["last"]],
                  p + "lane_sums", axis=-2)
        # The upper 8 lanes onto the lower 8, then (l0+l1)+(l2+l3) and
        # (l4+l5)+(l6+l7) (two horizontal adds), then those two.
        lanes = n("Add", [self._slice(lanes, c["half"], c["end"], p + "upper"),
                          self._slice(lanes, c["i0"], c["half"], p + "lower")], p + "eight")
        for step in ("four", "two"):
            lanes = n("Add", [self._slice(lanes, c["i0"], c["end"], p + step + "_even", c["i2"]),
                              self._slice(lanes, c["i1"], c["end"], p + step + "_odd", c["i2"])], p + step)
        total = n("Add", [self._slice(lanes, c["i0"], c["i1"], p + "first"),
                          self._slice(lanes, c["i1"], c["i2"], p + "second")], p + "sum")
        # Times the reciprocal, as the kernel does. Reciprocal, not Div(1, sum):
        # ONNX Runtime's optimiser turns Div(1, s) * e into e / s, which rounds
        # otherwise (Kokoro's session is optimised).
        n("Mul", [exps, n("Reciprocal", [total], p + "reciprocal")], y)
        return self.appended.pop(first)

    def _slice(self, x: str, start: str, end: str, output: str, step: str | None = None) -> str:
        inputs = [x, start, end, self.const["last_axis"]] + ([step] if step else [])
        return self.node("Slice", inputs, output)


def fixed_order_softmax(model: bytes) -> bytes:
    """The model (ONNX bytes) with every Softmax over its last axis rewritten
    to sum in AVX-512's order on every CPU. Raises ValueError for a Softmax
    over another axis."""
    import onnx

    proto = onnx.load_from_string(model)
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    builder = _Builder(proto.graph, opset)
    nodes = []
    for node in proto.graph.node:
        if node.op_type != "Softmax" or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1 if opset >= 13 else 1)
        if axis != -1:
            raise ValueError(f"Softmax {node.name!r} normalises axis {axis}; only a Softmax over "
                             "the last axis (-1) can be summed in a fixed order")
        nodes.append(builder.softmax(node.input[0], node.output[0], node.name or f"softmax{len(nodes)}"))
    del proto.graph.node[:]
    proto.graph.node.extend(nodes + builder.appended)
    return proto.SerializeToString()
