"""Export classifiers: the streaming step graph for unidirectional last/per-step models,
the whole-sequence ``lengths`` graph otherwise; validated before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnedge.contract import LENGTHS, LOGITS, Manifest, StateSpec, TensorSpec, state_names
from rnnedge.exporter import (
    apply_provenance,
    check_quantization,
    export_provenance,
    measuring_device,
    record_precision,
    training_summary,
)
from rnnedge.exporter.graph import export_lengths_graph, export_step_graph
from rnnedge.exporter.onnx_io import check_model, declare_shapes, with_manifest
from rnnedge.exporter.precision import reduce_precision
from rnnedge.exporter.verify import validate_classifier, validate_reduced_classifier
from rnnedge.nets.classifier import ClassifierConfig, SequenceClassifier
from rnnedge.runtime.classify import Classifier
from rnnedge.runtime.graph import FLOAT32_EXACT_COUNT
from rnnedge.runtime.session import open_session
from rnnedge.tasks import input_kind
from rnnedge.tokenizer import tokenizer_from_dict
from rnnedge.train.checkpoint import model_config_of


def load_classifier(payload: dict[str, Any]) -> SequenceClassifier:
    model = SequenceClassifier(model_config_of(ClassifierConfig, payload["model_config"]))
    model.load_state_dict(payload["model"])
    return model.eval()


def tensor_specs(
    config: ClassifierConfig,
) -> tuple[list[TensorSpec], list[TensorSpec], list[StateSpec]]:
    """Inputs, outputs and states of the graph this classifier exports as."""
    name = "features" if config.input == "features" else "tokens"
    inputs = [
        TensorSpec(name, "float32", ["batch", "time", config.feature_dim])
        if config.input == "features"
        else TensorSpec(name, "int64", ["batch", "time"])
    ]
    per_step = config.streams or config.pooling == "per-step"
    logits = TensorSpec(
        LOGITS,
        "float32",
        ["batch", "time", config.num_classes] if per_step else ["batch", config.num_classes],
    )
    if not config.streams:
        return [*inputs, TensorSpec(LENGTHS, "int64", ["batch"])], [logits], []
    layout = config.state_layout()
    state_in, state_out = state_names(tuple(key for key, _, _ in layout))
    shapes: list[list[int | str]] = [["batch", rows, width] for _, rows, width in layout]
    states = [
        StateSpec(i, o, shape) for i, o, shape in zip(state_in, state_out, shapes, strict=True)
    ]
    return (
        [*inputs, *(TensorSpec(n, "float32", s) for n, s in zip(state_in, shapes, strict=True))],
        [logits, *(TensorSpec(n, "float32", s) for n, s in zip(state_out, shapes, strict=True))],
        states,
    )


def classifier_manifest(payload: dict[str, Any], model: SequenceClassifier) -> Manifest:
    """The manifest of a classifier checkpoint (before export provenance and validation)."""
    config = model.config
    inputs, outputs, states = tensor_specs(config)
    architecture = {
        **config.to_dict(),
        "graph": "step" if config.streams else "lengths",
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if config.streams and config.pooling == "mean":
        architecture["max_steps"] = FLOAT32_EXACT_COUNT  # its step count is float32
    return Manifest(
        task="classification",
        architecture=architecture,
        tokenizer=tokenizer_spec(payload),
        inputs=inputs,
        outputs=outputs,
        states=states,
        labels=list(payload["labels"]),
        preprocessing=payload.get("preprocessing", {}),
        training=training_summary(payload),
        export=export_provenance(),
    )


def tokenizer_spec(payload: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's tokenizer restated in the manifest's full, language-neutral form
    (checkpoints from before the spec lacked unit, normalisation and special ids)."""
    described = payload.get("tokenizer") or {}
    return tokenizer_from_dict(described).to_dict() if described.get("vocab") else {}


def heldout_items(
    payload: dict[str, Any], path: str | Path | None, precision: str
) -> tuple[list[Any], list[np.ndarray]]:
    """Labelled held-out inputs for the int8/fp16 accuracy change, read like `rnnedge eval`
    does; where they come from is the model's input kind's business (`rnnedge.tasks`)."""
    labels, preprocessing = list(payload["labels"]), payload.get("preprocessing", {})
    described = payload.get("tokenizer") or {}
    tokenizer = tokenizer_from_dict(described) if described.get("vocab") else None
    kind = input_kind(preprocessing, tokenizer)
    return kind.heldout_items(
        labels, Path(path) if path else None, payload.get("data", {}), precision
    )


def export_classifier_payload(
    payload: dict[str, Any],
    quantize: str | None = None,
    run_validation: bool = True,
    provenance: dict[str, Any] | None = None,
    heldout: str | Path | None = None,
) -> tuple[bytes, Manifest]:
    """A classifier checkpoint's contents → (validated ONNX bytes, manifest).

    With ``quantize`` 'int8' or 'fp16' the held-out accuracy of the fp32 graph and that one
    is measured on `heldout` and the change recorded; it must agree with fp32 on at least
    REDUCED_MIN_AGREEMENT of the held-out predictions.
    """
    check_quantization(quantize)
    items = heldout_items(payload, heldout, quantize) if quantize else None
    model = load_classifier(payload)
    config = model.config
    manifest = classifier_manifest(payload, model)
    apply_provenance(manifest, payload, provenance)
    graph = export_step_graph(model) if config.streams else export_lengths_graph(model)
    model_bytes = with_manifest(declare_shapes(graph, manifest), manifest)
    report: dict[str, Any] = {"structure": check_model(model_bytes)}
    fp32 = Classifier(open_session(model_bytes, device="cpu"))
    if run_validation:
        report["fp32"] = validate_classifier(model, model_bytes, fp32)
    if quantize and items is not None:
        fp32_size, model_bytes = len(model_bytes), reduce_precision(model_bytes, quantize)
        report[f"structure_{quantize}"] = check_model(model_bytes)
        reduced = Classifier(open_session(model_bytes, device=measuring_device(quantize)))
        report[quantize], report["quality"] = validate_reduced_classifier(
            fp32, reduced, quantize, *items
        )
        record_precision(manifest, quantize, fp32_size)
    else:
        record_precision(manifest, None, len(model_bytes))
    report["validated"] = run_validation
    manifest.validation = report
    return with_manifest(model_bytes, manifest), manifest
