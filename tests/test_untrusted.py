"""Untrusted model files: crafted with the `onnx` package, each refused by the CLI with one
`error:` line and exit code 1 before it can make the runtime read local files, parse or
allocate without bound, or run anything; and the protobuf reader that finds them (the
runtime has no `onnx` package) agrees with `onnx` on real and crafted files."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.external_data_helper
import onnx.helper
import onnx.numpy_helper
import onnxruntime as ort
import pytest

from helpers import error_line, invoke, succeeded
from rnnedge.contract import MANIFEST_KEY
from rnnedge.runtime import protoscan
from rnnedge.runtime.session import MAX_LABELS, MAX_MANIFEST_BYTES, MAX_VOCABULARY

MODELS = Path(__file__).resolve().parents[1] / "models"


def edited(base: Path, out: Path, edit: Callable[[dict[str, Any]], Any] | str) -> Path:
    """A copy of `base` whose manifest is `edit` (raw text) or edited in place by `edit`."""
    model = onnx.load(base)
    entry = next(p for p in model.metadata_props if p.key == MANIFEST_KEY)
    if isinstance(edit, str):
        entry.value = edit
    else:
        manifest = json.loads(entry.value)
        edit(manifest)
        entry.value = json.dumps(manifest)
    onnx.save(model, out)
    return out


def refused(result: Any, path: Path, *words: str) -> None:
    """One `error:` line naming the file and `words`, exit code 1, nothing on stdout."""
    error_line(result, str(path), *words)
    assert result.exit_code == 1
    assert result.stdout == ""


# --------------------------------------------------------------------------------------
# External data
# --------------------------------------------------------------------------------------


def test_external_data_is_refused_although_onnxruntime_would_read_it(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = onnx.load(tiny_model)
    onnx.external_data_helper.convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location="weights.data", size_threshold=0
    )
    path = tmp_path / "external.onnx"
    onnx.save(model, path)
    assert (tmp_path / "weights.data").exists()
    monkeypatch.chdir(tmp_path)
    # The threat: given the bytes, onnxruntime reads weights.data from the current directory.
    ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"])
    for command in (["inspect"], ["infer", "generate"]):
        refused(invoke(*command, path), path, "external data", "single-file")


def external(tensor: onnx.TensorProto, location: str = "elsewhere.bin") -> onnx.TensorProto:
    """`tensor` turned into a reference to a file (which need not exist: it is never read)."""
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    add_entry(tensor, "location", location)
    add_entry(tensor, "length", "16")
    return tensor


def add_entry(tensor: onnx.TensorProto, key: str, value: str) -> None:
    entry = tensor.external_data.add()
    entry.key, entry.value = key, value


def tensor(name: str) -> onnx.TensorProto:
    return onnx.numpy_helper.from_array(np.ones(4, np.float32), name)


def value(name: str) -> onnx.ValueInfoProto:
    return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [4])


def model_with_external_tensors_everywhere() -> onnx.ModelProto:
    """External references in each place a tensor can sit: an initializer, a sparse
    initializer's values, a Constant's attribute, an If branch's initializer, a function's
    Constant; plus one ordinary tensor that must not be reported."""
    branch = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["in_branch"], ["b"])],
        "branch",
        [],
        [value("b")],
        [external(tensor("in_branch"))],
    )
    sparse = onnx.helper.make_sparse_tensor(
        external(tensor("sparse_values")),
        onnx.numpy_helper.from_array(np.arange(4, dtype=np.int64), "sparse_indices"),
        [4],
    )
    nodes = [
        onnx.helper.make_node("Constant", [], ["c"], value=external(tensor("in_constant"))),
        onnx.helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch),
        onnx.helper.make_node("Twice", ["x"], ["z"], domain="local"),
    ]
    graph = onnx.helper.make_graph(
        nodes,
        "g",
        [onnx.helper.make_tensor_value_info("cond", onnx.TensorProto.BOOL, []), value("x")],
        [value("y"), value("z")],
        [external(tensor("initializer")), tensor("ordinary")],
        sparse_initializer=[sparse],
    )
    function = onnx.helper.make_function(
        "local",
        "Twice",
        ["x"],
        ["z"],
        [onnx.helper.make_node("Constant", [], ["z"], value=external(tensor("in_function")))],
        [onnx.helper.make_opsetid("", 17)],
    )
    return onnx.helper.make_model(graph, functions=[function])


def test_scan_finds_external_tensors_wherever_they_sit() -> None:
    scan = protoscan.scan_model(model_with_external_tensors_everywhere().SerializeToString())
    assert sorted(scan.external_tensors) == sorted(
        # the branch graph is both then_branch and else_branch: found in each
        ["initializer", "sparse_values", "in_constant", "in_branch", "in_branch", "in_function"]
    )


def test_external_reference_by_location_only_or_by_entries_only() -> None:
    """data_location EXTERNAL alone, or external_data entries alone, both count."""
    by_location = tensor("by_location")
    by_location.data_location = onnx.TensorProto.EXTERNAL
    by_entries = tensor("by_entries")
    add_entry(by_entries, "location", "x.bin")
    graph = onnx.helper.make_graph([], "g", [], [], [by_location, by_entries, tensor("fine")])
    scan = protoscan.scan_model(onnx.helper.make_model(graph).SerializeToString())
    assert sorted(scan.external_tensors) == ["by_entries", "by_location"]


@pytest.mark.parametrize("name", sorted(p.name for p in MODELS.glob("*.onnx")))
def test_scan_agrees_with_onnx_on_the_shipped_models(name: str) -> None:
    data = (MODELS / name).read_bytes()
    model = onnx.load_from_string(data)
    scan = protoscan.scan_model(data)
    assert scan.external_tensors == []
    expected = {p.key: len(p.value.encode()) for p in model.metadata_props}
    assert scan.metadata_sizes == expected
    assert protoscan.read_metadata(data) == {p.key: p.value for p in model.metadata_props}


def test_scan_field_numbers_are_onnx_proto_ones() -> None:
    """The reader's table of nested fields, checked against onnx's own descriptors."""
    messages = {
        "model": onnx.ModelProto,
        "training": onnx.TrainingInfoProto,
        "function": onnx.FunctionProto,
        "graph": onnx.GraphProto,
        "node": onnx.NodeProto,
        "attribute": onnx.AttributeProto,
        "sparse": onnx.SparseTensorProto,
    }
    kinds = {
        "GraphProto": "graph",
        "TensorProto": "tensor",
        "SparseTensorProto": "sparse",
        "NodeProto": "node",
        "AttributeProto": "attribute",
        "FunctionProto": "function",
        "TrainingInfoProto": "training",
    }
    for kind, message in messages.items():
        by_number = message.DESCRIPTOR.fields_by_number
        for number, child in protoscan.NESTED[kind].items():
            assert kinds[by_number[number].message_type.name] == child, (kind, number)
    tensor_fields = onnx.TensorProto.DESCRIPTOR.fields_by_name
    assert tensor_fields["name"].number == protoscan.TENSOR_NAME
    assert tensor_fields["external_data"].number == protoscan.TENSOR_EXTERNAL_DATA
    assert tensor_fields["data_location"].number == protoscan.TENSOR_DATA_LOCATION
    assert onnx.TensorProto.EXTERNAL == protoscan.DATA_LOCATION_EXTERNAL
    metadata = onnx.ModelProto.DESCRIPTOR.fields_by_name["metadata_props"]
    assert metadata.number == protoscan.MODEL_METADATA_PROPS


@pytest.mark.parametrize("cut", [1, 7, 100, -1])
def test_scan_refuses_truncated_bytes(cut: int) -> None:
    data = (MODELS / "fortune-langid-int8.onnx").read_bytes()
    with pytest.raises(protoscan.MalformedModel, match="truncated"):
        protoscan.scan_model(data[:cut])


# --------------------------------------------------------------------------------------
# Manifests over the limits, or unreadable
# --------------------------------------------------------------------------------------


def pad_past_limit(manifest: dict[str, Any]) -> None:
    manifest["padding"] = "x" * (MAX_MANIFEST_BYTES + 1)


def huge_vocabulary(manifest: dict[str, Any]) -> None:
    manifest["tokenizer"]["vocab"] = [str(i) for i in range(MAX_VOCABULARY + 1)]


def many_labels(manifest: dict[str, Any]) -> None:
    manifest["labels"] = [f"l{i}" for i in range(MAX_LABELS + 1)]


def absurd_state(manifest: dict[str, Any]) -> None:
    manifest["states"][0]["shape"] = ["batch", 100_000, 100_000]


DEEP = '{"schema_version": "1.0", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
HUGE_INT = '{"schema_version": "1.0", "x": ' + "9" * 5_000 + "}"

# What each crafted manifest must make the one error line say.
BAD_MANIFESTS: dict[str, tuple[Callable[[dict[str, Any]], Any] | str, list[str]]] = {
    "over-16MiB": (pad_past_limit, ["'rnnedge.manifest'", "over the limit", "16 MiB"]),
    "vocabulary": (huge_vocabulary, ["1,000,001 vocabulary entries", "limit of 1,000,000"]),
    "labels": (many_labels, ["100,001 labels", "limit of 100,000"]),
    "state": (absurd_state, ["state elements", "over the limit"]),
    "nested": (DEEP, ["not readable JSON", "recursion"]),
    "huge-integer": (HUGE_INT, ["not readable JSON", "digits"]),
    "not-json": ("{not json", ["not valid JSON"]),
    "not-object": ("[1, 2]", ["not an object"]),
}


@pytest.fixture(scope="module")
def bad_manifests(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad-manifests")
    return {
        kind: edited(tiny_model, folder / f"{kind}.onnx", edit)
        for kind, (edit, _) in BAD_MANIFESTS.items()
    }


@pytest.mark.parametrize("kind", list(BAD_MANIFESTS))
def test_bad_manifest_is_one_line(kind: str, bad_manifests: dict[str, Path]) -> None:
    path = bad_manifests[kind]
    words = BAD_MANIFESTS[kind][1]
    refused(invoke("inspect", path), path, *words)
    refused(invoke("infer", "generate", path, "--max-new-tokens", "2"), path, *words)


def test_limits_leave_real_models_alone(tiny_model: Path) -> None:
    succeeded(invoke("inspect", tiny_model, "--json"))
    for path in sorted(MODELS.glob("*.onnx")):
        protoscan_sizes = protoscan.scan_model(path.read_bytes()).metadata_sizes
        assert max(protoscan_sizes.values()) < MAX_MANIFEST_BYTES // 100


# --------------------------------------------------------------------------------------
# Nothing in a model file runs
# --------------------------------------------------------------------------------------


class Touch:
    """Unpickling this creates a file: the proof that something ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def booby_trap(sentinel: Path, fields: str) -> Callable[[dict[str, Any]], None]:
    """Put code that would create `sentinel` into the manifest: in data-only fields
    (`fields="data"`) or in the fields the runtime dispatches on (`"dispatch"`)."""
    code = f"__import__('pathlib').Path({str(sentinel)!r}).touch()"
    payload = pickle.dumps(Touch(sentinel), protocol=0).decode("ascii")

    def edit(manifest: dict[str, Any]) -> None:
        if fields == "dispatch":
            manifest["task"] = code
            manifest["tokenizer"]["kind"] = code
            manifest["tokenizer"]["unknown"] = payload
            manifest["architecture"]["cell"] = code
            return
        manifest["training"] = {"note": code, "pickled": payload}
        manifest["export"]["recipe"] = code
        manifest["sampling"][code] = payload
        manifest["eval"] = code  # an unknown top-level key

    return edit


@pytest.mark.parametrize("fields", ["data", "dispatch"])
def test_code_and_pickles_in_a_manifest_are_never_run(
    fields: str, tiny_model: Path, tmp_path: Path
) -> None:
    sentinel = tmp_path / "ran"
    assert (
        not pickle.loads(pickle.dumps(Touch(tmp_path / "probe"))) and (tmp_path / "probe").exists()
    )  # the payload is live: unpickling it does create a file
    path = edited(tiny_model, tmp_path / f"trap-{fields}.onnx", booby_trap(sentinel, fields))
    results = [
        invoke("inspect", path, "--json"),
        invoke("infer", "generate", path, "--prompt", "the", "--max-new-tokens", "3"),
        invoke("eval", path, "--text", path),
    ]
    for result in results:
        assert result.exit_code in (0, 1) and "Traceback" not in result.output
    # The manifest is data: inspect shows the strings as they are.
    shown = json.loads(succeeded(results[0]).stdout)["manifest"]
    assert json.dumps(shown).count("__import__") >= 3
    if fields == "dispatch":  # looked up in tables: an unknown value is an error line
        error_line(results[1], str(path))
        error_line(results[2], str(path))
    assert not sentinel.exists()
