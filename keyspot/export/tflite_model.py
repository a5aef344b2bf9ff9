"""What the C export needs to know about a .tflite flatbuffer.

The builtin operators it uses (so that the firmware's op resolver is generated
from the model, never hand-listed) and the type, shape and quantisation of its
input and output. Parsed with the TFLite schema that tflite-micro bundles,
which needs only `flatbuffers`, not TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math

try:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
except ImportError:  # pragma: no cover - same generated schema, heavier import
    from tensorflow.lite.python import schema_py_generated as schema



def enum_names(enum) -> dict[int, str]:
    """Value -> name of one of the schema's enums (BuiltinOperator, TensorType, ...)."""
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}


OP_NAMES = enum_names(schema.BuiltinOperator)
TYPE_NAMES = enum_names(schema.TensorType)


def is_flatbuffer(model: bytes | bytearray) -> bool:
    return len(model) >= 8 and bool(schema.Model.ModelBufferHasIdentifier(bytearray(model), 0))


def builtin_code(builtin: int, deprecated_builtin: int) -> int:
    """An operator code's builtin operator. Schema v3a: codes above 127 live
    in builtin_code, older files only fill deprecated_builtin_code; the
    larger of the two is the real one."""
    return max(builtin, deprecated_builtin)


def op_name(code: int) -> str:
    return OP_NAMES.get(code, f"BUILTIN_{code}")

# MicroMutableOpResolver method names that do not follow from the builtin
# operator name by capitalising its words (BATCH_MATMUL -> AddBatchMatMul).
_RESOLVER_EXCEPTIONS = {
    "BATCH_MATMUL": "AddBatchMatMul",
    "CUMSUM": "AddCumSum",
    "PADV2": "AddPadV2",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
}


class ModelFileError(ValueError):
    """The bytes are not a TFLite model the firmware can run."""


@dataclasses.dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str                 # "int8", "float32", ...
    shape: tuple[int, ...]
    scale: float               # NaN when the tensor is not quantised
    zero_point: int

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    ops: tuple[str, ...]       # builtin operator names, e.g. ("CONV_2D", ...), sorted
    input: Tensor
    output: Tensor


def _tensor(subgraph, index: int) -> Tensor:
    t = subgraph.Tensors(index)
    q = t.Quantization()
    quantised = q is not None and q.ScaleLength() > 0
    return Tensor(
        name=(t.Name() or b"").decode("utf-8", "replace"),
        dtype=TYPE_NAMES[t.Type()].lower() if t.Type() in TYPE_NAMES else str(t.Type()),
        shape=tuple(int(t.Shape(i)) for i in range(t.ShapeLength())),
        scale=float(q.Scale(0)) if quantised else math.nan,
        zero_point=int(q.ZeroPoint(0)) if quantised and q.ZeroPointLength() else 0,
    )


def inspect(model: bytes) -> ModelInfo:
    """Operators and main-subgraph input/output of a .tflite flatbuffer."""
    if not is_flatbuffer(model):
        raise ModelFileError("not a TFLite flatbuffer (no TFL3 identifier)")
    m = schema.Model.GetRootAs(bytearray(model), 0)
    if m.SubgraphsLength() < 1:
        raise ModelFileError("the model has no subgraph")
    codes = []
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        code = builtin_code(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == schema.BuiltinOperator.CUSTOM:
            custom = (oc.CustomCode() or b"?").decode("utf-8", "replace")
            raise ModelFileError(f"uses the custom operator {custom!r}, which the generated "
                                 "TFLM op resolver cannot register")
        codes.append(op_name(code))
    used = set()
    for s in range(m.SubgraphsLength()):
        sg = m.Subgraphs(s)
        for o in range(sg.OperatorsLength()):
            used.add(codes[sg.Operators(o).OpcodeIndex()])
    main = m.Subgraphs(0)
    if main.InputsLength() != 1 or main.OutputsLength() != 1:
        raise ModelFileError(f"expected one input and one output, got {main.InputsLength()} "
                             f"and {main.OutputsLength()}")
    return ModelInfo(ops=tuple(sorted(used)),
                     input=_tensor(main, main.Inputs(0)),
                     output=_tensor(main, main.Outputs(0)))


def resolver_method(op: str) -> str:
    """`MicroMutableOpResolver` method that registers a builtin: CONV_2D -> AddConv2D."""
    if op in _RESOLVER_EXCEPTIONS:
        return _RESOLVER_EXCEPTIONS[op]
    return "Add" + "".join(word.capitalize() if not word[0].isdigit() else word.upper()
                           for word in op.split("_"))
