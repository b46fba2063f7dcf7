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
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from rnnedge.errors import ModelError

MANIFEST_KEY = "rnnedge.manifest"
SCHEMA_VERSION = "1.1"
# Flat copies of key scalars, each its own metadata_props entry, for tools that list
# metadata but will not parse JSON (and as a quick check that a file is an rnnedge model).
FLAT_PREFIX = "rnnedge."
TOKENS = "tokens"
FEATURES = "features"
LENGTHS = "lengths"
LOGITS = "logits"
STATE_IN_PREFIX = "state_in."
STATE_OUT_PREFIX = "state_out."
STATE_LAYOUT = "batch-first: [batch, layers * directions, hidden]"
CELL_STATES = {"rnn": ("h",), "gru": ("h",), "lstm": ("h", "c")}
# The state of n-gram classifiers holding the last token ids read (float32, 0 = none yet).
RECENT_TOKENS = "recent_tokens"


def state_names(keys: str | tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Input and output state tensor names for a cell type (torch's order: h, then c) or for
    explicit state keys (e.g. a streaming classifier's pooling state after its cell's)."""
    keys = CELL_STATES[keys] if isinstance(keys, str) else keys
    return [STATE_IN_PREFIX + k for k in keys], [STATE_OUT_PREFIX + k for k in keys]


def known_fields(cls: type, data: Any, what: str) -> dict[str, Any]:
    """`data`'s entries that `cls` has fields for: keys a newer minor version added are
    ignored, at every level, so this reader keeps working on newer files."""
    if not isinstance(data, dict):
        raise ModelError(
            f"model manifest: {what} is {type(data).__name__}, not an object; re-export the model"
        )
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass
class TensorSpec:
    """One graph input or output; symbolic axes are strings ("batch", "time")."""

    name: str
    dtype: str
    shape: list[int | str]

    @classmethod
    def from_dict(cls, data: Any) -> TensorSpec:
        return cls(**known_fields(cls, data, "a tensor spec"))


@dataclass
class StateSpec:
    """One recurrent state tensor: fed back from `output` to `input` between calls."""

    input: str
    output: str
    shape: list[int | str]
    dtype: str = "float32"
    initial_value: float = 0.0

    @classmethod
    def from_dict(cls, data: Any) -> StateSpec:
        return cls(**known_fields(cls, data, "a state spec"))


@dataclass
class Manifest:
    """Self-description of an rnnedge model; stored as JSON in the ONNX metadata.

    The JSON Schema of this structure is ``rnnedge/manifest.schema.json``; docs/contract.md
    explains each field for implementers in other languages.
    """

    task: str
    architecture: dict[str, Any]
    tokenizer: dict[str, Any]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    states: list[StateSpec]
    schema_version: str = SCHEMA_VERSION
    state_layout: str = STATE_LAYOUT
    identity: dict[str, Any] = field(default_factory=dict)
    operator_domains: list[str] = field(default_factory=list)
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
        except (ValueError, RecursionError):  # a huge integer, or nesting past the stack
            raise ModelError(
                "model manifest JSON cannot be read safely; re-export the model"
            ) from None
        if not isinstance(data, dict):
            raise ModelError(
                f"model manifest is JSON {type(data).__name__}, not an object; re-export the model"
            )
        check_schema_version(str(data.get("schema_version", "")))
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """A manifest from parsed JSON, unknown keys ignored; ModelError when malformed."""
        known = known_fields(cls, data, "the manifest")
        try:
            known["inputs"] = [TensorSpec.from_dict(t) for t in data["inputs"]]
            known["outputs"] = [TensorSpec.from_dict(t) for t in data["outputs"]]
            known["states"] = [StateSpec.from_dict(s) for s in data["states"]]
            manifest = cls(**known)
        except (KeyError, TypeError) as exc:
            raise ModelError(
                f"model manifest is missing or has a malformed field ({exc}); re-export the model"
            ) from None
        check_field_types(manifest)
        return manifest

    def flat_metadata(self) -> dict[str, str]:
        """Key scalars as separate string entries (see FLAT_PREFIX)."""
        return {
            FLAT_PREFIX + "schema_version": self.schema_version,
            FLAT_PREFIX + "task": self.task,
            FLAT_PREFIX + "name": str(self.identity.get("name", "")),
            FLAT_PREFIX + "vocab_size": str(len(self.tokenizer.get("vocab", []))),
            FLAT_PREFIX + "num_labels": str(len(self.labels)),
            FLAT_PREFIX + "state_inputs": ",".join(s.input for s in self.states),
            FLAT_PREFIX + "state_outputs": ",".join(s.output for s in self.states),
            FLAT_PREFIX + "operator_domains": ",".join(self.operator_domains),
        }


DICT_FIELDS = (
    "architecture",
    "tokenizer",
    "identity",
    "preprocessing",
    "sampling",
    "training",
    "export",
    "validation",
)


def check_field_types(manifest: Manifest) -> None:
    """Fields a reader relies on must have their JSON types (a hand-edited or hostile file)."""
    for name in DICT_FIELDS:
        if not isinstance(getattr(manifest, name), dict):
            raise ModelError(f"model manifest field {name!r} is not an object; re-export the model")
    for name in ("labels", "operator_domains"):
        value = getattr(manifest, name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ModelError(
                f"model manifest field {name!r} is not a list of strings; re-export the model"
            )
    for spec in [*manifest.inputs, *manifest.outputs, *manifest.states]:
        if not isinstance(spec.shape, list) or not all(
            isinstance(d, (int, str)) for d in spec.shape
        ):
            name = getattr(spec, "name", None) or spec.input
            raise ModelError(
                f"model manifest gives {name!r} a malformed shape; re-export the model"
            )


def check_schema_version(version: str) -> None:
    """Accept this major version (any minor: unknown keys are ignored) and the previous
    major; refuse a newer major, whose meaning this reader cannot know."""
    current_major = int(SCHEMA_VERSION.split(".")[0])
    try:
        major = int(version.split(".")[0])
    except ValueError:
        raise ModelError(
            f"model manifest has no readable schema_version ({version!r}); re-export the model"
        ) from None
    if major > current_major:
        raise ModelError(
            f"model manifest schema {version} is newer than this rnnedge reads "
            f"({current_major - 1}.x and {current_major}.x); upgrade rnnedge"
        )
    if major < current_major - 1:
        raise ModelError(
            f"model manifest schema {version} is too old for this rnnedge (reads "
            f"{current_major - 1}.x and {current_major}.x); re-export the model"
        )


def check_declared_tensors(
    manifest: Manifest, declared: dict[str, tuple[str, list[int | str]]], where: str
) -> None:
    """Every manifest tensor must be declared by the graph with exactly its dtype and shape
    (`declared`: name → (dtype, shape), symbolic axes as names); ModelError names the first
    mismatch."""
    for spec in [*manifest.inputs, *manifest.outputs]:
        if spec.name not in declared:
            raise ModelError(f"{where}: the graph has no tensor {spec.name!r} the manifest names")
        dtype, shape = declared[spec.name]
        if dtype != spec.dtype or list(shape) != list(spec.shape):
            raise ModelError(
                f"{where}: {spec.name!r} is declared {dtype} {list(shape)} by the graph but "
                f"{spec.dtype} {list(spec.shape)} by the manifest; re-export the model"
            )
