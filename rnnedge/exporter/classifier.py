"""Export classifiers: the streaming step graph for unidirectional last/per-step models,
the whole-sequence ``lengths`` graph otherwise; validated before anything is written.
"""

from __future__ import annotations

from typing import Any

from rnnedge.contract import LENGTHS, LOGITS, Manifest, StateSpec, TensorSpec, state_names
from rnnedge.errors import InputError
from rnnedge.exporter import export_provenance, training_summary
from rnnedge.exporter.graph import export_lengths_graph, export_step_graph
from rnnedge.exporter.onnx_io import check_model, with_manifest
from rnnedge.exporter.verify import validate_classifier
from rnnedge.nets.classifier import ClassifierConfig, SequenceClassifier
from rnnedge.runtime.classify import Classifier
from rnnedge.runtime.session import open_session


def load_classifier(payload: dict[str, Any]) -> SequenceClassifier:
    model = SequenceClassifier(ClassifierConfig(**payload["model_config"]))
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
    shape: list[int | str] = ["batch", config.layers, config.hidden]
    state_in, state_out = state_names(config.cell)
    states = [StateSpec(i, o, shape) for i, o in zip(state_in, state_out, strict=True)]
    return (
        [*inputs, *(TensorSpec(n, "float32", shape) for n in state_in)],
        [logits, *(TensorSpec(n, "float32", shape) for n in state_out)],
        states,
    )


def export_classifier_payload(
    payload: dict[str, Any],
    quantize: str | None = None,
    run_validation: bool = True,
    provenance: dict[str, Any] | None = None,
) -> tuple[bytes, Manifest]:
    """A classifier checkpoint's contents → (validated ONNX bytes, manifest)."""
    if quantize:
        raise InputError("--quantize is not supported for classifiers yet; export fp32")
    model = load_classifier(payload)
    config = model.config
    inputs, outputs, states = tensor_specs(config)
    manifest = Manifest(
        task="classification",
        architecture={
            **config.to_dict(),
            "graph": "step" if config.streams else "lengths",
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        tokenizer=payload.get("tokenizer") or {},
        inputs=inputs,
        outputs=outputs,
        states=states,
        labels=list(payload["labels"]),
        preprocessing=payload.get("preprocessing", {}),
        training=training_summary(payload),
        export={**export_provenance(), **(provenance or {})},
    )
    graph = export_step_graph(model) if config.streams else export_lengths_graph(model)
    model_bytes = with_manifest(graph, manifest)
    report: dict[str, Any] = {"structure": check_model(model_bytes)}
    if run_validation:
        runtime = Classifier(open_session(model_bytes, device="cpu"))
        report["fp32"] = validate_classifier(model, model_bytes, runtime)
    report["validated"] = run_validation
    manifest.validation = report
    return with_manifest(model_bytes, manifest), manifest
