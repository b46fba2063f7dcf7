"""Contract 1.1: what a program in another language relies on, checked on real files.

Shipped models are read back from their ONNX bytes with the `onnx` package (not through
rnnedge's reader), and fresh exports are made from a tiny checkpoint, so these tests fail
when the exporter, the reader or the shipped files drift from the contract.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import pytest

from helpers import error_line, invoke, succeeded
from rnnedge.contract import MANIFEST_KEY, Manifest, check_declared_tensors
from rnnedge.errors import ModelError
from rnnedge.exporter import export_checkpoint
from rnnedge.exporter.onnx_io import declared_tensors
from rnnedge.runtime import load

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "models").glob("*.onnx"))
SCHEMA = json.loads((ROOT / "rnnedge" / "manifest.schema.json").read_text())


def metadata(path: Path) -> dict[str, str]:
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def embedded_manifest(path: Path) -> dict:
    return json.loads(metadata(path)[MANIFEST_KEY])


def rewrite_manifest(source: Path, target: Path, change) -> Path:
    """A copy of `source` whose embedded manifest dict went through `change` (in place)."""
    model = onnx.load(str(source), load_external_data=False)
    entry = next(p for p in model.metadata_props if p.key == MANIFEST_KEY)
    data = json.loads(entry.value)
    change(data)
    entry.value = json.dumps(data)
    target.write_bytes(model.SerializeToString())
    return target


def test_there_are_shipped_models() -> None:
    assert {p.stem for p in SHIPPED} >= {"kjv-char-lstm", "fortune-langid", "fashion-mnist-rows"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_manifest_matches_the_json_schema(path: Path) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(embedded_manifest(path))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_json_copy_is_the_embedded_manifest(path: Path) -> None:
    copy = json.loads(path.with_suffix(".manifest.json").read_text())
    assert copy == embedded_manifest(path)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_graph_declares_exactly_the_manifest_tensors(path: Path) -> None:
    manifest = Manifest.from_dict(embedded_manifest(path))
    check_declared_tensors(manifest, declared_tensors(path.read_bytes()), path.name)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_identity_and_no_machine_paths(path: Path) -> None:
    manifest = embedded_manifest(path)
    identity = manifest["identity"]
    assert identity["name"] == path.stem
    assert identity["license"] != "unspecified" and identity["data"]["license"] != "unspecified"
    strings = json.dumps(manifest)
    assert "/work/" not in strings and "/home/" not in strings and "/tmp/" not in strings


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_flat_metadata_agrees_with_the_manifest_and_graph(path: Path) -> None:
    entries, manifest = metadata(path), embedded_manifest(path)
    assert entries["rnnedge.task"] == manifest["task"]
    assert entries["rnnedge.schema_version"] == manifest["schema_version"]
    assert entries["rnnedge.vocab_size"] == str(len(manifest["tokenizer"].get("vocab", [])))
    graph_inputs = {i.name for i in onnx.load(str(path), load_external_data=False).graph.input}
    states = entries["rnnedge.state_inputs"].split(",") if entries["rnnedge.state_inputs"] else []
    assert set(states) <= graph_inputs and len(states) == len(manifest["states"])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_operator_domains_are_those_the_graph_uses(path: Path) -> None:
    graph = onnx.load(str(path), load_external_data=False).graph
    used = sorted({n.domain for n in graph.node} - {"", "ai.onnx"})
    assert embedded_manifest(path)["operator_domains"] == used
    if "int8" in path.stem or path.stem == "kjv-char-lstm":
        assert used == ["com.microsoft"]


def test_load_refuses_a_graph_whose_declared_shape_differs(tmp_path: Path) -> None:
    source = ROOT / "models" / "fortune-langid.onnx"
    model = onnx.load(str(source), load_external_data=False)
    output = next(o for o in model.graph.output if o.name == "state_out.pool_sum")
    output.type.tensor_type.shape.dim[1].dim_param = "pool_dim"
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(model.SerializeToString())
    line = error_line(invoke("infer", "classify", bad, "Guten Tag"), "state_out.pool_sum")
    assert "re-export" in line


def test_unknown_keys_at_every_level_of_a_newer_minor_are_ignored(
    tiny_model: Path, tmp_path: Path
) -> None:
    def add_keys(data: dict) -> None:
        data["schema_version"] = "1.9"
        data["future_top_level"] = {"x": 1}
        data["inputs"][0]["future_axis_meaning"] = "tokens"
        data["states"][0]["future_quantization"] = None
        data["sampling"]["future_min_p"] = 0.05
        data["tokenizer"]["future_byte_fallback"] = False
        data["identity"]["future_homepage"] = "none"

    newer = rewrite_manifest(tiny_model, tmp_path / "newer.onnx", add_keys)
    greedy = ["--prompt", "the lord", "--max-new-tokens", "40", "--temperature", "0"]
    assert (
        succeeded(invoke("infer", "generate", newer, *greedy)).stdout
        == succeeded(invoke("infer", "generate", tiny_model, *greedy)).stdout
    )
    # The model's own sampling defaults (with the unknown key) are read too.
    succeeded(invoke("infer", "generate", newer, "--max-new-tokens", "5", "--seed", "1"))


def test_a_newer_major_is_refused_with_one_line(tiny_model: Path, tmp_path: Path) -> None:
    newer = rewrite_manifest(
        tiny_model, tmp_path / "v2.onnx", lambda d: d.update(schema_version="2.0")
    )
    error_line(invoke("infer", "generate", newer), "schema 2.0", "upgrade rnnedge")


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda d: d.update(labels="abc"), "labels"),
        (lambda d: d.update(sampling=[1]), "sampling"),
        (lambda d: d["inputs"][0].update(shape="batch"), "shape"),
        (lambda d: d.pop("states"), "states"),
    ],
)
def test_malformed_manifest_fields_fail_with_one_line(
    tiny_model: Path, tmp_path: Path, change, needle: str
) -> None:
    bad = rewrite_manifest(tiny_model, tmp_path / "bad.onnx", change)
    error_line(invoke("infer", "generate", bad), needle)


def test_same_checkpoint_exports_to_the_same_bytes(
    tiny_checkpoint: Path, corpus: Path, tmp_path: Path
) -> None:
    first = export_checkpoint(tiny_checkpoint, tmp_path / "a" / "m.onnx", heldout=corpus)
    second = export_checkpoint(tiny_checkpoint, tmp_path / "b" / "m.onnx", heldout=corpus)
    assert first.path.read_bytes() == second.path.read_bytes()


def test_fresh_export_has_identity_tokenizer_spec_and_no_absolute_paths(
    tiny_checkpoint: Path, corpus: Path, tmp_path: Path
) -> None:
    result = succeeded(
        invoke(
            "export",
            tiny_checkpoint,
            "-o",
            tmp_path / "verse.onnx",
            "--heldout",
            corpus,
            "--description",
            "verse",
            "--license",
            "MIT",
            "--data-license",
            "CC0-1.0",
            "--author",
            "me",
            "--write-manifest",
        )
    )
    assert "wrote" in result.stdout
    manifest = json.loads((tmp_path / "verse.manifest.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(manifest)
    assert manifest == embedded_manifest(tmp_path / "verse.onnx")
    assert manifest["identity"]["name"] == "verse"
    assert manifest["identity"]["authors"] == ["me"]
    assert manifest["identity"]["data"] == {
        "source": corpus.name,
        "license": "CC0-1.0",
        "sha256": manifest["training"]["data"]["sha256"],
    }
    spec = manifest["tokenizer"]
    assert (spec["unit"], spec["normalization"], spec["pad_id"]) == ("code-point", "none", None)
    assert spec["empty_prompt"] == "newline"
    assert str(tmp_path) not in json.dumps(manifest) and str(corpus.parent) not in json.dumps(
        manifest
    )


def test_int8_language_model_needs_heldout_text(tiny_checkpoint: Path, tmp_path: Path) -> None:
    target = tmp_path / "m-int8.onnx"
    error_line(invoke("export", tiny_checkpoint, "-o", target, "--quantize", "int8"), "--heldout")
    error_line(invoke("export", tiny_checkpoint, "-o", target, "--fp16"), "--heldout")
    assert not target.exists()


def test_export_validation_fails_on_a_manifest_shape_the_graph_does_not_have(
    tiny_model: Path,
) -> None:
    manifest = load(tiny_model).manifest
    manifest.outputs[0].shape = ["batch", "time", 999]
    with pytest.raises(ModelError, match="logits"):
        check_declared_tensors(manifest, declared_tensors(tiny_model.read_bytes()), "export")


def test_inspect_shows_identity_and_operator_domains(tiny_model_int8: Path) -> None:
    shown = succeeded(invoke("inspect", tiny_model_int8, "--json")).stdout
    manifest = json.loads(shown)["manifest"]
    assert manifest["operator_domains"] == ["com.microsoft"]
    table = succeeded(invoke("inspect", tiny_model_int8)).stdout
    assert "com.microsoft" in table and manifest["identity"]["name"] in table


def test_empty_prompt_follows_the_manifest_rule(tiny_model: Path, tmp_path: Path) -> None:
    lm = load(tiny_model)
    newline_first = lm.generate("", 30, lm.sampling_config(temperature=0.0))
    assert "".join(newline_first) == "".join(lm.generate("\n", 30, lm.sampling_config(0.0)))
    assert np.array_equal(lm.encode_prompt(""), lm.tokenizer.encode("\n"))
