"""Reading and writing the manifest in ONNX ``metadata_props``; checker and shape inference."""

from __future__ import annotations

import onnx

from rnnedge.contract import MANIFEST_KEY, Manifest


def with_manifest(model_bytes: bytes, manifest: Manifest) -> bytes:
    """The model with `manifest` under MANIFEST_KEY and its flat copies of key scalars
    (replacing any previous ones). The manifest's operator domains are read off the graph
    here, so they always name what this very file needs."""
    model = onnx.load_from_string(model_bytes)
    manifest.operator_domains = required_domains(model)
    entries = {MANIFEST_KEY: manifest.to_json(), **manifest.flat_metadata()}
    kept = [p for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "rnnedge"
    return model.SerializeToString()


def required_domains(model: onnx.ModelProto) -> list[str]:
    """Operator domains beyond standard ONNX that a runtime must provide (e.g. com.microsoft
    for int8 LSTMs), from the operators the graph actually uses."""
    used = {node.domain for node in model.graph.node}
    return sorted(d for d in used if d not in ("", "ai.onnx"))


def declare_shapes(model_bytes: bytes, manifest: Manifest) -> bytes:
    """Graph inputs and outputs declared with exactly the manifest's shapes: the exporter
    leaves names like 'Slicestate_out.pool_sum_dim_1' where an axis is really fixed."""
    model = onnx.load_from_string(model_bytes)
    specs = {t.name: t for t in [*manifest.inputs, *manifest.outputs]}
    for value in [*model.graph.input, *model.graph.output]:
        if value.name not in specs:
            continue
        dims = value.type.tensor_type.shape.dim
        del dims[:]
        for axis in specs[value.name].shape:
            dim = dims.add()
            if isinstance(axis, str):
                dim.dim_param = axis
            else:
                dim.dim_value = axis
    return model.SerializeToString()


ONNX_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64"}


def declared_tensors(model_bytes: bytes) -> dict[str, tuple[str, list[int | str]]]:
    """name → (dtype, shape) of every graph input and output, symbolic axes by name."""
    graph = onnx.load_from_string(model_bytes).graph
    return {
        v.name: (
            ONNX_DTYPES.get(v.type.tensor_type.elem_type, str(v.type.tensor_type.elem_type)),
            [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
        )
        for v in [*graph.input, *graph.output]
    }


def check_model(model_bytes: bytes) -> dict:
    """onnx.checker full check (includes strict shape inference); raises on failure."""
    model = onnx.load_from_string(model_bytes)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return {
        "onnx_checker": "passed (full_check)",
        "shape_inference": "passed (strict)",
        "ir_version": inferred.ir_version,
        "opsets": {o.domain or "ai.onnx": o.version for o in inferred.opset_import},
        "ops": sorted({n.op_type for n in inferred.graph.node}),
    }


def symbolic_axes(model_bytes: bytes) -> dict[str, list[int | str]]:
    """Shape of every graph input and output, symbolic axes by name."""
    graph = onnx.load_from_string(model_bytes).graph
    return {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in list(graph.input) + list(graph.output)
    }
