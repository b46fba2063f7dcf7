"""Reading and writing the manifest in ONNX ``metadata_props``; checker and shape inference."""

from __future__ import annotations

import onnx

from rnnedge.contract import MANIFEST_KEY, Manifest


def with_manifest(model_bytes: bytes, manifest: Manifest) -> bytes:
    """The model with `manifest` stored under MANIFEST_KEY (replacing any previous one)."""
    model = onnx.load_from_string(model_bytes)
    kept = [p for p in model.metadata_props if p.key != MANIFEST_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=MANIFEST_KEY, value=manifest.to_json())
    model.producer_name = "rnnedge"
    return model.SerializeToString()


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
