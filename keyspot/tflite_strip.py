"""Strip a .tflite flatbuffer of the strings no interpreter needs.

The converter writes every tensor's name (the Keras layer path, tens of bytes
each), the subgraph's name and a SignatureDef that maps those names back to
the SavedModel's. The firmware, TFLite Micro and keyspot's own runners find
tensors by index, so these strings are flash spent on nothing: about 10% of
a DS-CNN's model. Operator codes and metadata (the minimum runtime version)
stay, as TensorFlow's own `flatbuffer_utils.strip_strings` keeps them.

The model is rewritten through the schema's object API, which packs a
weight buffer only as aligned as its length word (4 bytes) and ignores the
schema's `force_align: 16`. Each buffer is aligned to 16 here, as the
schema asks, and the result is checked, so that no kernel on the device
ever reads its weights or int32 biases across an alignment boundary.
"""

from __future__ import annotations

import flatbuffers
import numpy as np

# The schema that tflite-micro bundles: it needs only `flatbuffers`. Imported
# here rather than through keyspot.export.tflite_model (whose is_flatbuffer
# strip_names repeats) because that package's __init__ loads the whole C
# export, which would make every edit to it rerun the quantize stage.
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

BUFFER_ALIGNMENT = 16      # the schema's force_align on Buffer.data
_IDENTIFIER = b"TFL3"


class _AlignedBuffer(schema.BufferT):
    """A BufferT whose data vector starts on a BUFFER_ALIGNMENT boundary."""

    def Pack(self, builder):
        if isinstance(self.data, np.ndarray) and self.data.size:
            # Pad so that the payload about to be written ends, and so starts,
            # aligned; Prep also raises the builder's minalign, so Finish
            # aligns the whole file to the same boundary.
            builder.Prep(BUFFER_ALIGNMENT, self.data.size * self.data.itemsize)
        return super().Pack(builder)


def strip_names(model: bytes) -> bytes:
    """The same model without tensor and subgraph names, description and signatures."""
    tree = unpack(model)
    tree.description = None
    tree.signatureDefs = None    # it names tensors, so it is useless without the names
    for subgraph in tree.subgraphs or []:
        subgraph.name = None
        for tensor in subgraph.tensors or []:
            tensor.name = None
    return pack(tree, len(model))


def unpack(model: bytes) -> schema.ModelT:
    """The model's object tree, for a rewrite that pack() writes back."""
    if len(model) < 8 or not schema.Model.ModelBufferHasIdentifier(bytearray(model), 0):
        raise ValueError("not a TFLite flatbuffer (no TFL3 identifier)")
    return schema.ModelT.InitFromPackedBuf(bytearray(model), 0)


def pack(tree: schema.ModelT, size_hint: int = 1024) -> bytes:
    """The flatbuffer of `tree`, every buffer's data aligned to BUFFER_ALIGNMENT."""
    for buffer in tree.buffers or []:
        buffer.__class__ = _AlignedBuffer
    builder = flatbuffers.Builder(size_hint)
    builder.Finish(tree.Pack(builder), file_identifier=_IDENTIFIER)
    packed = bytes(builder.Output())
    misaligned = [i for i, offset in buffer_data_offsets(packed).items() if offset % BUFFER_ALIGNMENT]
    if misaligned:  # pragma: no cover - guards a change in the flatbuffers packer
        raise RuntimeError(f"buffers {misaligned} are not {BUFFER_ALIGNMENT}-byte aligned after packing")
    return packed


def buffer_data_offsets(model: bytes) -> dict[int, int]:
    """Buffer index -> file offset of its data, for every buffer that holds data."""
    root = schema.Model.GetRootAs(bytearray(model), 0)
    offsets = {}
    for i in range(root.BuffersLength()):
        table = root.Buffers(i)._tab
        field = table.Offset(4)          # Buffer.data, the table's first field
        if field and table.VectorLen(field):
            offsets[i] = table.Vector(field)
    return offsets
