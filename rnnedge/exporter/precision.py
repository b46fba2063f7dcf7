"""Reduced-precision versions of an exported fp32 graph: int8 weights (CPU) and fp16 (CUDA).

int8: onnxruntime's dynamic quantization. LSTM nodes become
``com.microsoft.DynamicQuantizeLSTM`` and the head ``MatMulInteger``; ORT does not quantize
GRU/RNN cells (only their head and embedding).

fp16: every float initializer and tensor inside the graph becomes fp16, while the graph's
inputs and outputs stay fp32 behind Cast nodes. So the contract is unchanged (a runtime
feeds and reads fp32 state either way) and the state carried between steps keeps fp32 —
the rounding happens inside each step only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import onnx

from rnnedge.contract import RECENT_TOKENS
from rnnedge.errors import InputError
from rnnedge.runtime.session import import_onnxruntime

DESCRIPTIONS = {
    "int8": "int8 (onnxruntime quantize_dynamic, QInt8 weights)",
    "fp16": "fp16 (weights and tensors inside the graph fp16; inputs, outputs and state fp32)",
}


def quantize_int8(model_bytes: bytes) -> bytes:
    """The int8-weight version of an fp32 model (metadata is re-attached by the caller)."""
    import_onnxruntime()  # a clear error if it is missing
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="rnnedge-quant-") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model_bytes)
        # reduce_range: 7-bit weights. CPUs without VNNI (AVX2 only) multiply u8 x s8 pairs
        # with saturating 16-bit adds; full-range weights overflow there (measured on an AVX2
        # EPYC: a tiny LM's int8 argmax agreement 0.921 -> 0.996 with reduce_range).
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, reduce_range=True)
        return target.read_bytes()


def convert_fp16(model_bytes: bytes) -> bytes:
    """The fp16 version of an fp32 model, fp32 at its inputs and outputs."""
    import_onnxruntime()
    # The converter ships inside onnxruntime (CPU and GPU wheels alike): no extra dependency.
    from onnxruntime.transformers.float16 import convert_float_to_float16

    source = onnx.load_from_string(model_bytes)
    if any(node.op_type == "Loop" for node in source.graph.node):
        # Measured: the converter retypes the loop's sequence values to fp16 and wires casts
        # to names inside its body, giving a graph onnxruntime rejects.
        raise InputError(
            "fp16 export of a graph with an ONNX Loop (a max-pooled classifier's running max) "
            "is not supported by onnxruntime's fp16 converter: export fp32 or --quantize int8"
        )
    blocked = token_id_path(source.graph)
    model = convert_float_to_float16(source, keep_io_types=True, node_block_list=blocked)
    skip_fp16_round_trips(model.graph, set(blocked))
    sort_topologically(model.graph)
    return model.SerializeToString()


def token_id_path(graph: onnx.GraphProto) -> list[str]:
    """Nodes that carry token ids in float (the recent-tokens state of n-gram classifiers),
    kept fp32: fp16 holds whole numbers exactly only up to 2048, and ids go higher.

    From each such state input forward to its Cast to an integer type, and from each such
    state output back to the Cast from one.
    """
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    blocked: list[str] = []
    frontier = [i.name for i in graph.input if i.name.endswith(RECENT_TOKENS)]
    while frontier:
        for node in consumers.get(frontier.pop(), []):
            blocked.append(node.name)
            if not is_integer_cast(node):
                frontier.extend(node.output)
    frontier = [o.name for o in graph.output if o.name.endswith(RECENT_TOKENS)]
    while frontier:
        node = producers.get(frontier.pop())
        if node is not None:
            blocked.append(node.name)
            frontier.extend([] if node.op_type == "Cast" else node.input)
    return blocked


def skip_fp16_round_trips(graph: onnx.GraphProto, blocked: set[str]) -> None:
    """The converter still wraps blocked nodes in casts through fp16 (the graph input's cast
    to fp16, then back to fp32): point each such cast back to fp32 at the value before the
    round trip, and drop the fp16 casts left unread."""
    producers = {out: node for node in graph.node for out in node.output}
    on_path = {name for node in graph.node if node.name in blocked for name in node.input}
    on_path |= {o.name for o in graph.output if o.name.endswith(RECENT_TOKENS)}
    for node in graph.node:
        if is_cast_to(node, onnx.TensorProto.FLOAT) and node.output[0] in on_path:
            before = producers.get(node.input[0])
            if before is not None and is_cast_to(before, onnx.TensorProto.FLOAT16):
                node.input[0] = before.input[0]
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    unread = [n for n in graph.node if n.op_type == "Cast" and n.output[0] not in read]
    for node in unread:
        graph.node.remove(node)


def cast_target(node: onnx.NodeProto) -> int | None:
    """The element type a Cast node converts to (its `to` attribute); None for other nodes."""
    if node.op_type != "Cast":
        return None
    return next(a.i for a in node.attribute if a.name == "to")


def is_cast_to(node: onnx.NodeProto, element_type: int) -> bool:
    return cast_target(node) == element_type


def is_integer_cast(node: onnx.NodeProto) -> bool:
    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE}
    return cast_target(node) not in (None, *float_types)


def sort_topologically(graph: onnx.GraphProto) -> None:
    """Reorder `graph.node` so each node follows the producers of its inputs.

    The fp16 converter appends the input Casts after the nodes that read them; ORT
    tolerates that, but the ONNX checker and other runtimes require topological order.
    """
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = [(node, outer_names(node)) for node in graph.node], []
    while pending:
        runnable = [needs <= ready for _, needs in pending]
        if not any(runnable):
            raise ValueError("graph has a cycle or an input nothing produces")
        for (node, _), run_now in zip(pending, runnable, strict=True):
            if run_now:
                copy = onnx.NodeProto()
                copy.CopyFrom(node)  # detached: the originals go when the field is cleared
                ordered.append(copy)
                ready.update(node.output)
        pending = [entry for entry, run_now in zip(pending, runnable, strict=True) if not run_now]
    del graph.node[:]
    graph.node.extend(ordered)


def outer_names(node: onnx.NodeProto) -> set[str]:
    """Names `node` reads from its graph: its inputs, and those its subgraphs (Loop, If,
    Scan bodies) read from the enclosing scope."""
    names = set(node.input)
    for attribute in node.attribute:
        for body in [attribute.g, *attribute.graphs] if attribute.type in GRAPH_TYPES else []:
            inside = {i.name for i in body.input} | {t.name for t in body.initializer}
            inside |= {out for inner in body.node for out in inner.output}
            for inner in body.node:
                names |= outer_names(inner) - inside
    return names


GRAPH_TYPES = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


REDUCERS: dict[str, Callable[[bytes], bytes]] = {"int8": quantize_int8, "fp16": convert_fp16}


def reduce_precision(model_bytes: bytes, precision: str) -> bytes:
    """`model_bytes` converted to `precision` ('int8' or 'fp16')."""
    return REDUCERS[precision](model_bytes)
