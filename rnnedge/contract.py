"""The ONNX contract shared by export and runtime: tensor names, state layout, manifest.

Everything here is plain Python + JSON so that export writes it, the runtime reads it,
and a program in another language can run a model from the manifest alone.

Graph of a unidirectional model (one graph serves every use)::

    tokens        int64   [batch, time]
    state_in.h    float32 [batch, layers, hidden]     (batch-first, so Triton's sequence
    state_in.c    float32 [batch, layers, hidden]      batcher can own axis 0; LSTM only)
    -> logits     float32 [batch, time, vocab]
    -> state_out.h, state_out.c  (same shapes as the inputs)

``time`` is dynamic: 1 is the streaming step, len(prompt) the one-call prefill.
The manifest is JSON under ``metadata_props[MANIFEST_KEY]``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rnnedge.errors import ModelError

MANIFEST_KEY = "rnnedge.manifest"
SCHEMA_VERSION = "1.0"
TOKENS = "tokens"
FEATURES = "features"
LENGTHS = "lengths"
LOGITS = "logits"
STATE_IN_PREFIX = "state_in."
STATE_OUT_PREFIX = "state_out."
STATE_LAYOUT = "batch-first: [batch, layers * directions, hidden]"
CELL_STATES = {"rnn": ("h",), "gru": ("h",), "lstm": ("h", "c")}


def state_names(keys: str | tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Input and output state tensor names for a cell type (torch's order: h, then c) or for
    explicit state keys (e.g. a streaming classifier's pooling state after its cell's)."""
    keys = CELL_STATES[keys] if isinstance(keys, str) else keys
    return [STATE_IN_PREFIX + k for k in keys], [STATE_OUT_PREFIX + k for k in keys]


@dataclass
class TensorSpec:
    """One graph input or output; symbolic axes are strings ("batch", "time")."""

    name: str
    dtype: str
    shape: list[int | str]


@dataclass
class StateSpec:
    """One recurrent state tensor: fed back from `output` to `input` between calls."""

    input: str
    output: str
    shape: list[int | str]
    dtype: str = "float32"
    initial_value: float = 0.0


@dataclass
class Manifest:
    """Self-description of an rnnedge model; stored as JSON in the ONNX metadata."""

    task: str
    architecture: dict[str, Any]
    tokenizer: dict[str, Any]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    states: list[StateSpec]
    schema_version: str = SCHEMA_VERSION
    state_layout: str = STATE_LAYOUT
    labels: list[str] = field(default_factory=list)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse and version-check a manifest; raises ModelError with the reason."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(
                f"model manifest is not valid JSON ({exc.msg}); re-export the model"
            ) from None
        if not isinstance(data, dict):
            raise ModelError(
                f"model manifest is JSON {type(data).__name__}, not an object; re-export the model"
            )
        check_schema_version(str(data.get("schema_version", "")))
        try:
            data["inputs"] = [TensorSpec(**t) for t in data["inputs"]]
            data["outputs"] = [TensorSpec(**t) for t in data["outputs"]]
            data["states"] = [StateSpec(**s) for s in data["states"]]
            known = {f for f in cls.__dataclass_fields__}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (KeyError, TypeError) as exc:
            raise ModelError(
                f"model manifest is missing or has a malformed field ({exc}); re-export the model"
            ) from None


def check_schema_version(version: str) -> None:
    """Accept this major version and the previous one; refuse anything else."""
    current_major = int(SCHEMA_VERSION.split(".")[0])
    try:
        major = int(version.split(".")[0])
    except ValueError:
        raise ModelError(
            f"model manifest has no readable schema_version ({version!r}); re-export the model"
        ) from None
    if major not in (current_major, current_major - 1):
        raise ModelError(
            f"model manifest schema {version} is not readable by this rnnedge (reads "
            f"{current_major - 1}.x and {current_major}.x); upgrade rnnedge or re-export"
        )
