"""The ONNX contract: manifest JSON round trip, schema-version policy, malformed manifests,
and the state tensor names each cell type gets."""

from __future__ import annotations

import json

import pytest

from rnnedge.contract import (
    CELL_STATES,
    SCHEMA_VERSION,
    STATE_IN_PREFIX,
    STATE_OUT_PREFIX,
    Manifest,
    StateSpec,
    TensorSpec,
    check_schema_version,
    state_names,
)
from rnnedge.errors import ModelError


def sample_manifest(cell: str = "lstm") -> Manifest:
    """A manifest shaped like the exporter's, with a vocabulary beyond ASCII."""
    inputs, outputs = state_names(cell)
    shape: list[int | str] = ["batch", 2, 16]
    return Manifest(
        task="language-model",
        architecture={"cell": cell, "layers": 2, "hidden": 16, "embed_dim": 8},
        tokenizer={
            "kind": "char",
            "vocab": ["\n", " ", "a", "分", "开", "é", "😀"],
            "unknown": "error",
            "unk_token": None,
            "special_tokens": [],
        },
        inputs=[TensorSpec("tokens", "int64", ["batch", "time"])]
        + [TensorSpec(n, "float32", shape) for n in inputs],
        outputs=[TensorSpec("logits", "float32", ["batch", "time", 7])]
        + [TensorSpec(n, "float32", shape) for n in outputs],
        states=[StateSpec(i, o, shape) for i, o in zip(inputs, outputs, strict=True)],
        labels=["x", "分开"],
        sampling={"temperature": 0.8, "top_k": 0, "top_p": 1.0},
        training={"step": 30, "best_valid_bpc": 2.5},
        validation={"fp32": {"parity": {"passed": True, "max_abs_diff": 1e-7}}},
    )


def manifest_dict(**changes) -> dict:
    data = json.loads(sample_manifest().to_json())
    data.update(changes)
    return data


@pytest.mark.parametrize("cell", sorted(CELL_STATES))
def test_manifest_json_round_trip_is_equal(cell: str) -> None:
    manifest = sample_manifest(cell)
    restored = Manifest.from_json(manifest.to_json())
    assert restored == manifest
    assert all(isinstance(s, StateSpec) for s in restored.states)
    assert all(isinstance(t, TensorSpec) for t in restored.inputs + restored.outputs)


def test_manifest_json_keeps_unicode_literal_and_sorted_keys() -> None:
    text = sample_manifest().to_json()
    assert "分开" in text and "😀" in text  # not \\u escapes
    keys = list(json.loads(text))
    assert keys == sorted(keys)


def test_manifest_defaults_to_current_schema_version() -> None:
    assert sample_manifest().schema_version == SCHEMA_VERSION
    assert json.loads(sample_manifest().to_json())["schema_version"] == SCHEMA_VERSION


def test_unknown_manifest_fields_are_ignored() -> None:
    # A newer minor version may add fields; an older reader keeps working.
    data = manifest_dict(schema_version="1.7", added_in_1_7={"anything": 1})
    restored = Manifest.from_json(json.dumps(data))
    assert restored.schema_version == "1.7"
    assert restored.task == "language-model"


def current_major() -> int:
    return int(SCHEMA_VERSION.split(".")[0])


@pytest.mark.parametrize(
    "version",
    [SCHEMA_VERSION, "1.0", "1.7", "0.3", f"{current_major()}.99", f"{current_major() - 1}.0"],
)
def test_schema_version_current_and_previous_major_accepted(version: str) -> None:
    check_schema_version(version)
    restored = Manifest.from_json(json.dumps(manifest_dict(schema_version=version)))
    assert restored.schema_version == version


@pytest.mark.parametrize("version", ["2.0", f"{current_major() + 1}.0", "-1.0", "", "abc"])
def test_schema_version_outside_policy_is_refused_with_a_fix(version: str) -> None:
    with pytest.raises(ModelError) as info:
        check_schema_version(version)
    message = str(info.value)
    assert "schema" in message
    # The message says what to do about it (errors.py: "names the problem and the fix").
    assert "re-export" in message or "upgrade" in message


def test_newer_major_names_both_fixes() -> None:
    with pytest.raises(ModelError, match=r"newer than this rnnedge reads .*; upgrade rnnedge$"):
        Manifest.from_json(json.dumps(manifest_dict(schema_version="2.0")))


def test_missing_schema_version_is_refused() -> None:
    data = manifest_dict()
    del data["schema_version"]
    with pytest.raises(ModelError, match="schema_version"):
        Manifest.from_json(json.dumps(data))


@pytest.mark.parametrize("text", ["", "{", "not json", '{"task": "language-model",}'])
def test_invalid_json_is_a_model_error(text: str) -> None:
    with pytest.raises(ModelError, match=r"not valid JSON.*re-export"):
        Manifest.from_json(text)


@pytest.mark.parametrize("text", ["[]", "null", '"1.0"', "42"])
def test_json_that_is_not_an_object_is_a_model_error(text: str) -> None:
    with pytest.raises(ModelError):
        Manifest.from_json(text)


@pytest.mark.parametrize(
    "missing", ["task", "architecture", "tokenizer", "inputs", "outputs", "states"]
)
def test_missing_required_field_is_a_model_error(missing: str) -> None:
    data = manifest_dict()
    del data[missing]
    with pytest.raises(ModelError, match=r"missing or has a malformed field.*re-export"):
        Manifest.from_json(json.dumps(data))


@pytest.mark.parametrize(
    "changes",
    [
        {"inputs": [{"name": "tokens"}]},  # TensorSpec without dtype/shape
        {"states": [{"input": "state_in.h", "output": "state_out.h", "bogus": 1}]},
        {"outputs": [1, 2]},
        {"states": "state_in.h"},
    ],
    ids=["tensor-missing-keys", "state-unknown-key", "tensor-not-object", "states-not-list"],
)
def test_malformed_nested_field_is_a_model_error(changes: dict) -> None:
    with pytest.raises(ModelError, match="re-export"):
        Manifest.from_json(json.dumps(manifest_dict(**changes)))


def test_state_spec_defaults() -> None:
    spec = Manifest.from_json(sample_manifest().to_json()).states[0]
    assert spec.dtype == "float32"
    assert spec.initial_value == 0.0


@pytest.mark.parametrize("cell", sorted(CELL_STATES))
def test_state_names_pair_inputs_with_outputs(cell: str) -> None:
    inputs, outputs = state_names(cell)
    assert len(inputs) == len(outputs) == len(CELL_STATES[cell])
    assert all(n.startswith(STATE_IN_PREFIX) for n in inputs)
    assert all(n.startswith(STATE_OUT_PREFIX) for n in outputs)
    # Same kinds in the same order: the i-th input is fed from the i-th output.
    assert [n.removeprefix(STATE_IN_PREFIX) for n in inputs] == [
        n.removeprefix(STATE_OUT_PREFIX) for n in outputs
    ]
    assert len(set(inputs)) == len(inputs)


@pytest.mark.parametrize(("cell", "kinds"), [("rnn", ["h"]), ("gru", ["h"]), ("lstm", ["h", "c"])])
def test_state_names_order_per_cell(cell: str, kinds: list[str]) -> None:
    # h first, then c: the order of torch's LSTM state tuple, which the exported graph's
    # positional state inputs follow.
    inputs, outputs = state_names(cell)
    assert inputs == [STATE_IN_PREFIX + k for k in kinds]
    assert outputs == [STATE_OUT_PREFIX + k for k in kinds]
