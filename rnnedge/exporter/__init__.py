"""Export a checkpoint to one self-describing ONNX file, validated against torch.

Nothing is written unless validation passes (or is explicitly skipped); the file is written
to a temporary name and renamed, so a failed export never leaves half a model behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import onnx
import torch

import rnnedge
from rnnedge.atomic import write_bytes_atomic
from rnnedge.contract import LOGITS, TOKENS, Manifest, StateSpec, TensorSpec, state_names
from rnnedge.errors import InputError
from rnnedge.exporter.graph import OPSET, export_step_graph
from rnnedge.exporter.onnx_io import check_model, declare_shapes, with_manifest
from rnnedge.exporter.precision import DESCRIPTIONS, reduce_precision
from rnnedge.exporter.verify import validate
from rnnedge.nets.language_model import LanguageModel, LMConfig
from rnnedge.runtime.generate import Generator
from rnnedge.runtime.session import import_onnxruntime, open_session
from rnnedge.textio import heldout_tail, read_text
from rnnedge.tokenizer import CharTokenizer
from rnnedge.train.checkpoint import load_checkpoint, model_config_of

QUANTIZATIONS = (None, "int8", "fp16")  # None: fp32
DEFAULT_SAMPLING = {"temperature": 0.8, "top_k": 0, "top_p": 1.0}
HELDOUT_PROMPT_CHARS = 2048


@dataclass
class ExportResult:
    path: Path
    manifest: Manifest
    size_bytes: int


def load_language_model(payload: dict[str, Any]) -> LanguageModel:
    if payload.get("task") != "language-model":
        raise InputError(f"checkpoint task {payload.get('task')!r} is not a language model")
    model = LanguageModel(model_config_of(LMConfig, payload["model_config"]))
    model.load_state_dict(payload["model"])
    return model.eval()


def heldout_text(payload: dict[str, Any], path: str | Path | None) -> str | None:
    """The held-out part of `path` when it is the training file (same sha256), else all of it."""
    if path is None:
        return None
    text = read_text(path, "held-out text")
    data = payload.get("data", {})
    if hashlib.sha256(text.encode("utf-8")).hexdigest() == data.get("sha256"):
        return heldout_tail(text, data["valid_fraction"])
    return text


def build_manifest(
    payload: dict[str, Any],
    model: LanguageModel,
    tokenizer: CharTokenizer,
) -> Manifest:
    config = model.config
    state_shape: list[int | str] = ["batch", config.layers, config.hidden]
    inputs, outputs = state_names(config.cell)
    return Manifest(
        task="language-model",
        architecture={
            **config.to_dict(),
            "bidirectional": False,
            "input": "embedding" if config.embed_dim else "one-hot",
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        tokenizer=lm_tokenizer_spec(tokenizer),
        inputs=[TensorSpec(TOKENS, "int64", ["batch", "time"])]
        + [TensorSpec(n, "float32", state_shape) for n in inputs],
        outputs=[TensorSpec(LOGITS, "float32", ["batch", "time", config.vocab_size])]
        + [TensorSpec(n, "float32", state_shape) for n in outputs],
        states=[StateSpec(i, o, state_shape) for i, o in zip(inputs, outputs, strict=True)],
        sampling=dict(DEFAULT_SAMPLING),
        training=training_summary(payload),
        export=export_provenance(),
    )


def lm_tokenizer_spec(tokenizer: CharTokenizer) -> dict[str, Any]:
    """A language model's tokenizer spec: no padding (streams never pad), and the rule for
    an empty prompt: feed a newline, unprinted, when the vocabulary has one (verse and line
    corpora start most training windows after one); otherwise an empty prompt is an error."""
    spec = tokenizer.to_dict()
    spec["pad_id"] = None
    spec["empty_prompt"] = "newline" if "\n" in tokenizer.vocab else "error"
    return spec


def portable(value: Any) -> Any:
    """`value` with every absolute filesystem path replaced by its file name: a manifest
    must not carry the build machine's folders."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v) for v in value]
    if isinstance(value, str) and PurePath(value).is_absolute() and "\n" not in value:
        return PurePath(value).name
    return value


IDENTITY_DEFAULTS = {
    "description": "",
    "version": "0.0.0",
    "license": "unspecified",
    "authors": [],
    "recipe": None,
}


def model_identity(
    payload: dict[str, Any], output: str | Path, given: dict[str, Any] | None
) -> dict[str, Any]:
    """Name, description, version, license, authors and recipe of the model, and where its
    training data came from under which license; what the user or recipe gives wins."""
    given = dict(given or {})
    data = payload.get("data", {})
    source = data.get("source")
    data_identity = {
        "source": portable(source if isinstance(source, str) else data.get("path", "")),
        "license": "unspecified",
        "sha256": data.get("sha256"),
        **given.pop("data", {}),
    }
    identity = {"name": Path(output).stem, **IDENTITY_DEFAULTS, **given, "data": data_identity}
    return portable(identity)


def identity_options(
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    license: str | None = None,
    authors: list[str] | None = None,
    data_source: str | None = None,
    data_license: str | None = None,
) -> dict[str, Any]:
    """The identity fields a user gave (CLI flags or a recipe's [identity]), others left out."""
    given = {
        "name": name,
        "description": description,
        "version": version,
        "license": license,
        "authors": authors or None,
    }
    data = {"source": data_source, "license": data_license}
    identity: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if any(v is not None for v in data.values()):
        identity["data"] = {k: v for k, v in data.items() if v is not None}
    return identity


def training_summary(payload: dict[str, Any]) -> dict[str, Any]:
    """What the manifest says about training: data, steps, time, held-out metrics, options."""
    best = {k: v for k, v in payload.items() if k.startswith("best_valid_")}
    options = {
        k: v
        for k, v in payload.get("train_config", {}).items()
        if k not in ("text", "out", "resume")
    }
    return portable(
        {
            "data": payload.get("data", {}),
            "step": payload.get("step"),
            "train_seconds": payload.get("train_seconds"),
            "valid": payload.get("valid", {}),
            **best,
            "config": options,
            # a temperature folded into the output layer after training (export/calibrate.py)
            **({"calibration": payload["calibration"]} if "calibration" in payload else {}),
        }
    )


def export_provenance() -> dict[str, Any]:
    """Versions, opset and exporter: enough to reproduce or explain an export."""
    return {
        "rnnedge": rnnedge.__version__,
        "torch": str(torch.__version__),
        "onnx": onnx.__version__,
        "onnxruntime": import_onnxruntime().__version__,
        "opset": OPSET,
        "exporter": "torch.onnx.export(dynamo=False)",
        "quantization": None,
        # No timestamp: the same checkpoint exports to the same bytes.
    }


def validation_prompt(tokenizer: CharTokenizer, text: str | None, vocab_size: int) -> np.ndarray:
    """Real text when we have it (the first chars of the held-out part), else random tokens."""
    if text:
        ids = tokenizer.with_policy("skip").encode(text[:HELDOUT_PROMPT_CHARS])
        if ids.size >= 64:
            return ids
    return np.random.default_rng(0).integers(0, vocab_size, HELDOUT_PROMPT_CHARS, dtype=np.int64)


def export_checkpoint(
    checkpoint: str | Path,
    output: str | Path,
    quantize: str | None = None,
    heldout: str | Path | None = None,
    run_validation: bool = True,
    recipe: str | None = None,
    identity: dict[str, Any] | None = None,
) -> ExportResult:
    """Checkpoint → validated ONNX file at `output`; ``quantize`` 'int8' (int8 weights, for
    CPU) or 'fp16' (for CUDA) writes that version, with its measured quality change.
    `identity` (name, description, version, license, authors, data: {source, license})
    completes the defaults of `model_identity`."""
    payload = load_checkpoint(checkpoint)
    provenance = {
        "checkpoint": Path(checkpoint).name,
        "checkpoint_step": payload.get("step"),
        "recipe": recipe,
        "identity": model_identity(payload, output, {"recipe": recipe, **(identity or {})}),
    }
    if payload.get("task") == "classification":
        from rnnedge.exporter.classifier import export_classifier_payload

        model_bytes, manifest = export_classifier_payload(
            payload, quantize, run_validation, provenance, heldout
        )
    else:
        model_bytes, manifest = export_payload(
            payload, quantize, heldout_text(payload, heldout), run_validation, provenance
        )
    write_bytes_atomic(output, model_bytes)
    return ExportResult(Path(output), manifest, len(model_bytes))


def apply_provenance(
    manifest: Manifest, payload: dict[str, Any], provenance: dict[str, Any] | None
) -> None:
    """Export facts into `manifest.export`, the model's identity into `manifest.identity`."""
    provenance = dict(provenance or {})
    manifest.identity = provenance.pop("identity", None) or model_identity(payload, "model", None)
    manifest.export.update(provenance)


def check_quantization(quantize: str | None) -> None:
    if quantize not in QUANTIZATIONS:
        raise InputError(f"--quantize must be int8 (or omitted; --fp16 for fp16), got {quantize!r}")


def measuring_device(precision: str) -> str:
    """Where a reduced-precision graph's quality is measured: where it is meant to run.
    int8 kernels are CPU kernels; fp16 is for CUDA and falls back to CPU when there is none
    (ORT then computes each op in fp32 between fp16 tensors, so the figure is an estimate)."""
    return "auto" if precision == "fp16" else "cpu"


def record_precision(manifest: Manifest, precision: str | None, fp32_size: int) -> None:
    manifest.export["precision"] = precision or "fp32"
    if precision:
        manifest.export["quantization"] = DESCRIPTIONS[precision]
        manifest.export["fp32_size_bytes"] = fp32_size


def export_payload(
    payload: dict[str, Any],
    quantize: str | None = None,
    text: str | None = None,
    run_validation: bool = True,
    provenance: dict[str, Any] | None = None,
) -> tuple[bytes, Manifest]:
    """A checkpoint's contents → (validated ONNX bytes, manifest); writes nothing.

    `quantize` is None (fp32), 'int8' or 'fp16'. `text` is held-out text for the quality
    change and a realistic validation prompt.
    """
    check_quantization(quantize)
    if quantize and run_validation and not text:
        raise InputError(
            f"{quantize} export of a language model measures its bits/char change on real "
            "held-out text: pass --heldout (the training text file: its held-out tail is used)"
        )
    model = load_language_model(payload)
    tokenizer = CharTokenizer.from_dict(payload["tokenizer"])
    prompt = validation_prompt(tokenizer, text, model.config.vocab_size)
    manifest = build_manifest(payload, model, tokenizer)
    apply_provenance(manifest, payload, provenance)
    checks = LMChecks(
        lambda data, graph, ids, reduced: validate(model, data, graph, ids, reduced=reduced),
        prompt,
        text,
    )
    return validated_lm(model, manifest, checks, quantize, run_validation), manifest


@dataclass
class LMChecks:
    """How a language model's graphs are checked: `validate(bytes, runtime, prompt, reduced)`
    against its torch reference, on `prompt` ids, with held-out `text` for the quality change;
    `open_graph` opens the fp32 bytes (a user module's tracer may need its own message)."""

    validate: Callable[[bytes, Generator, np.ndarray, bool], dict[str, Any]]
    prompt: np.ndarray
    text: str | None
    open_graph: Callable[[bytes], Any] = lambda data: open_session(data, device="cpu")


def validated_lm(
    net: torch.nn.Module,
    manifest: Manifest,
    checks: LMChecks,
    quantize: str | None,
    run_validation: bool,
) -> bytes:
    """`net`'s step graph as validated ONNX bytes (int8/fp16 with `quantize`, its quality
    change measured on `checks.text`); the report goes into `manifest.validation`."""
    fp32_bytes = with_manifest(declare_shapes(export_step_graph(net), manifest), manifest)
    report: dict[str, Any] = {"structure": check_model(fp32_bytes)}
    fp32 = Generator(checks.open_graph(fp32_bytes))
    if run_validation:
        report["fp32"] = checks.validate(fp32_bytes, fp32, checks.prompt, False)
    final_bytes = fp32_bytes
    if quantize:
        final_bytes = reduce_precision(fp32_bytes, quantize)
        report[f"structure_{quantize}"] = check_model(final_bytes)
        reduced = Generator(open_session(final_bytes, device=measuring_device(quantize)))
        if run_validation:
            report[quantize] = checks.validate(final_bytes, reduced, checks.prompt, True)
        if checks.text:
            report["quality"] = quality_change(fp32, reduced, checks.text, quantize)
    record_precision(manifest, quantize, len(fp32_bytes))
    report["validated"] = run_validation
    manifest.validation = report
    return with_manifest(final_bytes, manifest)


def quality_change(
    fp32: Generator, reduced: Generator, text: str, precision: str
) -> dict[str, Any]:
    """Held-out bits/char of the fp32 graph (on CPU) and the `precision` one (on the
    provider it names), computed by the runtime."""
    before, after = fp32.evaluate(text), reduced.evaluate(text)
    return {
        "heldout_chars": before["chars"],
        "bpc_fp32": before["bpc"],
        f"bpc_{precision}": after["bpc"],
        "bpc_change": after["bpc"] - before["bpc"],
        "bpc_change_relative": (after["bpc"] - before["bpc"]) / before["bpc"],
        "measured_on": reduced.provider,
    }


# Bring your own model: defined after everything above, which it builds on.
from rnnedge.exporter.user_module import export_module as export_module  # noqa: E402
