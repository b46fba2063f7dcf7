"""What an ONNX file asks for, read from its protobuf bytes before onnxruntime sees them.

onnxruntime follows a tensor's external-data reference even when it is given the model's
bytes rather than a path: it then reads the named file relative to the *current directory*
(checked with onnxruntime 1.32: a model from bytes loaded ``w.data`` from the cwd). A model
from elsewhere could so pull local files into its weights, so the runtime refuses such
files before creating a session. This reader walks the protobuf wire format far enough to
find every tensor that can carry such a reference — graph initializers, sparse
initializers, tensors in node attributes (e.g. ``Constant``), subgraphs (``If``, ``Loop``,
``Scan``), functions and training graphs — and the size of each ``metadata_props`` entry.

It needs no ``onnx`` package (the runtime must not depend on it) and decodes nothing but
field headers, tensor names and metadata keys: weights and values are skipped by length.
Field numbers are onnx.proto's; a test checks them against the ``onnx`` package.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5

# Per message kind, the fields holding nested messages that can contain tensors, and the
# kind each holds. Everything else is skipped.
NESTED: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},  # TrainingInfoProto: initialization, algorithm
    "function": {7: "node", 11: "attribute"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},  # SparseTensorProto: values, indices
}
MODEL_METADATA_PROPS = 14
TENSOR_NAME, TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 8, 13, 14
DATA_LOCATION_EXTERNAL = 1
ENTRY_KEY, ENTRY_VALUE = 1, 2
# protobuf's own parsers refuse messages nested deeper than 100; subgraphs of real models
# nest a few levels.
MAX_DEPTH = 64


class MalformedModel(ValueError):
    """The bytes are not a well-formed protobuf message."""


@dataclass
class ModelScan:
    """Tensors that reference external data, and the size of each metadata entry."""

    external_tensors: list[str] = field(default_factory=list)
    metadata_sizes: dict[str, int] = field(default_factory=dict)


def read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it."""
    result = shift = 0
    while pos < end:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise MalformedModel(f"a varint longer than 10 bytes ends at byte {pos}")
    raise MalformedModel(f"truncated: a varint runs past byte {end}")


def fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, payload start, payload end) for each field of the message
    in data[start:end]; a varint's payload is its own bytes."""
    pos = start
    while pos < end:
        key, pos = read_varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise MalformedModel(f"field number 0 at byte {pos}")
        if wire == VARINT:
            stop = read_varint(data, pos, end)[1]
        elif wire == FIXED64:
            stop = pos + 8
        elif wire == FIXED32:
            stop = pos + 4
        elif wire == LENGTH_DELIMITED:
            length, pos = read_varint(data, pos, end)
            stop = pos + length
        else:  # groups (3, 4) do not occur in onnx.proto, which is proto3-compatible
            raise MalformedModel(f"unsupported wire type {wire} at byte {pos}")
        if stop > end:
            raise MalformedModel(f"truncated: a field runs past byte {end}")
        yield number, wire, pos, stop
        pos = stop


def tensor_reference(data: bytes, start: int, end: int) -> str | None:
    """The tensor's name (or '<unnamed>') if it references external data, else None."""
    name, external = "<unnamed>", False
    for number, wire, pos, stop in fields(data, start, end):
        if number == TENSOR_NAME and wire == LENGTH_DELIMITED:
            name = data[pos:stop].decode("utf-8", errors="replace")
        elif number == TENSOR_EXTERNAL_DATA and wire == LENGTH_DELIMITED:
            external = True
        elif number == TENSOR_DATA_LOCATION and wire == VARINT:
            external = external or read_varint(data, pos, stop)[0] == DATA_LOCATION_EXTERNAL
    return name if external else None


def metadata_entry(data: bytes, start: int, end: int) -> tuple[str, int]:
    """(key, value size in bytes) of one metadata_props entry."""
    key, size = "", 0
    for number, wire, pos, stop in fields(data, start, end):
        if number == ENTRY_KEY and wire == LENGTH_DELIMITED:
            key = data[pos:stop].decode("utf-8", errors="replace")
        elif number == ENTRY_VALUE and wire == LENGTH_DELIMITED:
            size = stop - pos
    return key, size


def read_metadata(data: bytes) -> dict[str, str]:
    """The model's metadata_props as a dict (the last entry wins for a repeated key, as in
    onnxruntime's custom_metadata_map), read without onnxruntime."""
    entries = {}
    for number, wire, pos, stop in fields(data, 0, len(data)):
        if number == MODEL_METADATA_PROPS and wire == LENGTH_DELIMITED:
            key, value = "", ""
            for inner, inner_wire, start, end in fields(data, pos, stop):
                if inner in (ENTRY_KEY, ENTRY_VALUE) and inner_wire == LENGTH_DELIMITED:
                    text = data[start:end].decode("utf-8", errors="replace")
                    key, value = (text, value) if inner == ENTRY_KEY else (key, text)
            entries[key] = value
    return entries


def scan_model(data: bytes) -> ModelScan:
    """Walk a serialized ModelProto; MalformedModel if the bytes are not one."""
    scan = ModelScan()
    pending = [("model", 0, len(data), 0)]  # an explicit stack: no recursion limit to hit
    while pending:
        kind, start, end, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise MalformedModel(f"messages nested deeper than {MAX_DEPTH} levels")
        if kind == "tensor":
            name = tensor_reference(data, start, end)
            if name is not None:
                scan.external_tensors.append(name)
            continue
        for number, wire, pos, stop in fields(data, start, end):
            if wire != LENGTH_DELIMITED:
                continue
            if kind == "model" and number == MODEL_METADATA_PROPS:
                key, size = metadata_entry(data, pos, stop)
                scan.metadata_sizes[key] = max(size, scan.metadata_sizes.get(key, 0))
            elif number in NESTED[kind]:
                pending.append((NESTED[kind][number], pos, stop, depth + 1))
    return scan
