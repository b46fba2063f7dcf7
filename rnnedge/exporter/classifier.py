"""Export classifiers: the streaming step graph for unidirectional last/per-step models,
the whole-sequence ``lengths`` graph otherwise; validated before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnedge.contract import LENGTHS, LOGITS, Manifest, StateSpec, TensorSpec, state_names
from rnnedge.errors import InputError
from rnnedge.exporter import (
    check_quantization,
    export_provenance,
    measuring_device,
    record_precision,
    training_summary,
)
from rnnedge.exporter.graph import export_lengths_graph, export_step_graph
from rnnedge.exporter.onnx_io import check_model, with_manifest
from rnnedge.exporter.precision import reduce_precision
from rnnedge.exporter.verify import validate_classifier, validate_reduced_classifier
from rnnedge.nets.classifier import ClassifierConfig, SequenceClassifier
from rnnedge.runtime.classify import Classifier
from rnnedge.runtime.session import open_session
from rnnedge.sources import evaluation_items

ADDITION_HELDOUT = 2000  # fresh random pairs scored for the binary-addition model


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


def heldout_items(
    payload: dict[str, Any], path: str | Path | None, precision: str
) -> tuple[list[Any], list[np.ndarray]]:
    """Labelled held-out inputs for the int8/fp16 accuracy change, read like `rnnedge eval` does.

    `path` is a CSV/JSONL table (the training run's column names), a folder per label, an
    aclImdb folder, or IDX images with their labels file beside them; the binary-addition
    model needs none (fresh random pairs).
    """
    labels, preprocessing = list(payload["labels"]), payload.get("preprocessing", {})
    if preprocessing.get("kind") == "binary-addition":
        return evaluation_items(labels, preprocessing, add=ADDITION_HELDOUT)
    if path is None:
        raise InputError(
            f"{precision} export of a classifier measures the accuracy change on labelled held-out "
            "data: pass --heldout (a CSV/JSONL table, a folder per label, aclImdb, or IDX images)"
        )
    path = Path(path)
    if preprocessing.get("kind") == "image-rows":
        return evaluation_items(labels, preprocessing, images=path, labels=idx_labels_beside(path))
    if path.is_dir():
        kind = "aclimdb" if (path / "train").is_dir() and (path / "test").is_dir() else "folders"
        return evaluation_items(labels, preprocessing, **{kind: path})
    source = payload.get("data", {}).get("source", {})
    columns = {k: source[k] for k in ("text_column", "label_column") if k in source}
    return evaluation_items(labels, preprocessing, table=path, **columns)


def idx_labels_beside(images: Path) -> Path:
    """t10k-images-idx3-ubyte[.gz] → t10k-labels-idx1-ubyte[.gz] in the same folder."""
    if "images-idx3" not in images.name:
        raise InputError(
            f"{images} is not an IDX images file: this model reads images, so --heldout "
            "must be one (e.g. t10k-images-idx3-ubyte.gz) with its labels file beside it"
        )
    labels = images.with_name(images.name.replace("images-idx3", "labels-idx1"))
    if not labels.is_file():
        raise InputError(
            f"no IDX labels file beside {images} (expected {labels.name}); "
            "keep the labels file next to the images"
        )
    return labels


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
