"""A Triton Inference Server model repository for an rnnedge step graph.

Writes ``ROOT/<name>/1/model.onnx`` (the file's bytes, unchanged), ``ROOT/<name>/config.pbtxt``
and ``ROOT/<name>/<name>.manifest.json`` (tokenizer and labels for clients). The config is
built as Triton's own ``ModelConfig`` protobuf (``tritonclient.grpc.model_config_pb2``, extra
``triton``) and printed with ``text_format``, so every field name and enum is checked by the
schema rather than by a string template:

- platform ``onnxruntime_onnx``, ``max_batch_size`` (Triton adds the batch axis itself, so
  every dims list here leaves it out);
- the sequence batcher with **implicit state**: each ``state_in.X`` / ``state_out.X`` pair is
  a ``sequence_batching.state`` entry, zero initial state, kept inside Triton between the
  requests of one sequence id; clients send only tokens (or feature rows) and read logits;
- the ``oldest`` strategy: the ``direct`` one fills idle batch slots with garbage inputs,
  which crash an embedding lookup (token ids out of range);
- no control inputs: the graph reads no START/END/READY/CORRID tensor; Triton itself resets
  the implicit state to its initial value on a request flagged sequence start.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rnnedge.atomic import write_bytes_atomic, write_text_atomic
from rnnedge.contract import Manifest, StateSpec, TensorSpec
from rnnedge.errors import DependencyError, InputError

PLATFORM = "onnxruntime_onnx"
DATA_TYPES = {"int64": "TYPE_INT64", "float32": "TYPE_FP32", "float16": "TYPE_FP16"}
KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}
# Triton aborts a sequence idle longer than this (its default, 1 s, ends a chat-paced
# client's stream between two requests).
IDLE_MICROSECONDS = 60_000_000
QUEUE_DELAY_MICROSECONDS = 100  # how long the oldest strategy waits to fill a batch


def model_config_module() -> Any:
    """Triton's ``model_config_pb2``, or a one-line error naming the extra to install."""
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise DependencyError(
            "writing a Triton repository needs tritonclient: pip install 'rnnedge[triton]'"
        ) from None
    return model_config_pb2


def triton_dims(shape: list[int | str]) -> list[int]:
    """A manifest shape without its batch axis; named (dynamic) axes become -1."""
    return [dim if isinstance(dim, int) else -1 for dim in shape[1:]]


def data_type(pb: Any, dtype: str) -> int:
    if dtype not in DATA_TYPES:
        raise InputError(f"Triton export: tensor type {dtype!r} is not supported")
    return pb.DataType.Value(DATA_TYPES[dtype])


def tensor_entries(pb: Any, specs: list[TensorSpec], states: set[str], cls: Any) -> list[Any]:
    """ModelInput/ModelOutput entries for the graph tensors that are not state."""
    return [
        cls(name=spec.name, data_type=data_type(pb, spec.dtype), dims=triton_dims(spec.shape))
        for spec in specs
        if spec.name not in states
    ]


def state_entry(pb: Any, spec: StateSpec) -> Any:
    """One implicit state: input/output names paired, dims without batch, zero initial value."""
    if spec.initial_value != 0.0:
        raise InputError(
            f"Triton export: state {spec.input!r} starts at {spec.initial_value}, but this "
            "repository declares zero initial state; re-export the model with zero state"
        )
    dims = triton_dims(spec.shape)
    kind = data_type(pb, spec.dtype)
    initial = pb.ModelSequenceBatching.InitialState(
        name="zero", data_type=kind, dims=dims, zero_data=True
    )
    return pb.ModelSequenceBatching.State(
        input_name=spec.input,
        output_name=spec.output,
        data_type=kind,
        dims=dims,
        initial_state=[initial],
    )


def build_config(manifest: Manifest, name: str, max_batch_size: int, kind: str) -> Any:
    """The ``ModelConfig`` protobuf for a step graph described by `manifest`."""
    pb = model_config_module()
    if not manifest.states:
        raise InputError(
            "Triton export needs a streaming step graph (state inputs and outputs); this "
            "model's whole-sequence graph has none (bidirectional models cannot stream)"
        )
    if kind not in KINDS:
        raise InputError(f"--kind must be cpu or gpu, got {kind!r}")
    if max_batch_size < 1:
        raise InputError(f"--max-batch-size must be at least 1, got {max_batch_size}")
    states = sorted(manifest.states, key=lambda s: s.input)
    names = {s.input for s in states} | {s.output for s in states}
    batching = pb.ModelSequenceBatching(
        oldest=pb.ModelSequenceBatching.StrategyOldest(
            max_candidate_sequences=max_batch_size,
            preferred_batch_size=[max_batch_size],
            max_queue_delay_microseconds=QUEUE_DELAY_MICROSECONDS,
        ),
        max_sequence_idle_microseconds=IDLE_MICROSECONDS,
        state=[state_entry(pb, spec) for spec in states],
    )
    return pb.ModelConfig(
        name=name,
        platform=PLATFORM,
        max_batch_size=max_batch_size,
        input=tensor_entries(pb, manifest.inputs, names, pb.ModelInput),
        output=tensor_entries(pb, manifest.outputs, names, pb.ModelOutput),
        sequence_batching=batching,
        instance_group=[
            pb.ModelInstanceGroup(kind=pb.ModelInstanceGroup.Kind.Value(KINDS[kind]), count=1)
        ],
    )


def config_text(config: Any) -> str:
    """``config.pbtxt``: the protobuf in text format."""
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def model_name(manifest: Manifest, path: Path, name: str | None) -> str:
    """The repository folder's name: `name`, else the manifest's, else the file's stem."""
    chosen = name or manifest.identity.get("name") or path.stem
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(chosen)):
        raise InputError(
            f"Triton model name {chosen!r}: use letters, digits, '_', '.' or '-' (give --name)"
        )
    return str(chosen)


def write_repository(
    model: str | Path,
    root: str | Path,
    name: str | None = None,
    kind: str = "cpu",
    max_batch_size: int = 64,
) -> Path:
    """Write (or replace) ``root/<name>`` for the model file `model`; returns that folder."""
    from rnnedge.runtime.catalog import read_manifest, resolve_model, write_manifest_json

    path = resolve_model(model)
    manifest = read_manifest(path)
    name = model_name(manifest, path, name)
    text = config_text(build_config(manifest, name, max_batch_size, kind))
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InputError(f"--triton {str(root)!r} is a file; give a folder for the repository")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        write_bytes_atomic(staging / "1" / "model.onnx", path.read_bytes())
        write_text_atomic(staging / "config.pbtxt", text)
        write_manifest_json(manifest, staging / f"{name}.manifest.json")
        staging.chmod(0o755)
        replace_folder(staging, root / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root / name


def replace_folder(new: Path, target: Path) -> None:
    """Move the complete folder `new` to `target`, replacing an older one whole."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old.{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
