"""Model names: MODEL arguments resolve to files (paths, shipped names, aliases, the default,
$RNNEDGE_MODEL), `rnnedge models` lists what is shipped, `inspect` describes a model and
writes its manifest as JSON, and the CLI accepts names wherever it takes a MODEL."""

from __future__ import annotations

import dataclasses
import json
from importlib.resources import files
from pathlib import Path

import onnxruntime as ort
import pytest
from rich.console import Console

from helpers import error_line, invoke, succeeded
from rnnedge import doctor
from rnnedge.contract import MANIFEST_KEY, Manifest
from rnnedge.errors import ModelError
from rnnedge.render import models_table
from rnnedge.runtime import catalog
from rnnedge.runtime.catalog import (
    ALIASES,
    describe_model,
    resolve_model,
    shipped_models,
    write_manifest_json,
)
from rnnedge.runtime.session import open_session

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = sorted(p.stem for p in MODELS.glob("*.onnx"))


@pytest.fixture(autouse=True)
def no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RNNEDGE_MODEL", raising=False)


def test_the_package_data_is_the_repository_models_folder() -> None:
    """This checkout's install (editable) finds models/ as rnnedge.models."""
    assert Path(str(files("rnnedge.models"))).resolve() == MODELS
    assert {p.stem for p in catalog.models_dir().glob("*.onnx")} == set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_name_resolves_to_its_file(name: str) -> None:
    assert resolve_model(name).resolve() == MODELS / f"{name}.onnx"
    assert resolve_model(f"{name}.onnx").resolve() == MODELS / f"{name}.onnx"


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_aliases_name_shipped_files(alias: str) -> None:
    assert resolve_model(alias).resolve() == MODELS / f"{ALIASES[alias]}.onnx"


def test_langid_is_the_int8_file() -> None:
    path = resolve_model("langid")
    manifest = open_session_manifest(path)
    assert str(manifest.export.get("quantization", "")).startswith("int8")
    assert manifest.task == "classification"


def open_session_manifest(path: Path) -> Manifest:
    options = ort.SessionOptions()
    # The contract's level (docs/contract.md): ALL crashes the CPU provider on fp16 graphs.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return Manifest.from_json(session.get_modelmeta().custom_metadata_map[MANIFEST_KEY])


def test_no_model_is_the_default_or_the_environment(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_model(None).resolve() == MODELS / f"{catalog.DEFAULT_MODEL}.onnx"
    assert resolve_model("").resolve() == MODELS / f"{catalog.DEFAULT_MODEL}.onnx"
    monkeypatch.setenv("RNNEDGE_MODEL", str(tiny_model))
    assert resolve_model(None) == tiny_model
    monkeypatch.setenv("RNNEDGE_MODEL", "fashion")
    assert resolve_model(None).resolve() == MODELS / "fashion-mnist-rows.onnx"
    monkeypatch.setenv("RNNEDGE_MODEL", "no-such-model")
    with pytest.raises(ModelError, match=r"'no-such-model'.*\$RNNEDGE_MODEL"):
        resolve_model(None)


def test_an_existing_path_wins_over_a_name(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kjv").write_bytes(tiny_model.read_bytes())
    assert resolve_model("kjv") == Path("kjv")
    assert resolve_model(tiny_model) == tiny_model


def test_an_unknown_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ModelError) as raised:
        resolve_model("klingon")
    message = str(raised.value)
    assert "'klingon'" in message and "rnnedge models" in message and "\n" not in message
    for name in SHIPPED:
        assert name in message
    for alias in ALIASES:
        assert f"({alias}" in message or f", {alias}" in message


def test_a_missing_path_says_it_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(tmp_path / "kjv")  # a path, so never a name


def test_shipped_models_describe_each_file() -> None:
    models = shipped_models()
    assert [m.name for m in models] == SHIPPED
    for model in models:
        manifest = open_session_manifest(model.path)  # onnxruntime's reading of the file
        assert model.task == manifest.task
        assert model.size_bytes == (MODELS / f"{model.name}.onnx").stat().st_size
        assert model.aliases == [a for a, target in ALIASES.items() if target == model.name]
        assert model.description
        assert json.loads(json.dumps(model.to_dict()))["path"] == str(model.path)


def test_description_prefers_the_manifests_own() -> None:
    manifest = open_session_manifest(MODELS / "kjv-char-lstm.onnx")
    manifest.identity = {}
    assert catalog.describe(manifest) == "LSTM 2×512 language model, int8"
    manifest.identity = {"description": "The King James Bible, one character at a time"}
    assert catalog.describe(manifest) == "The King James Bible, one character at a time"


def test_models_command_lists_names_aliases_and_tasks() -> None:
    listed = json.loads(succeeded(invoke("models", "--json")).stdout)
    assert [m["name"] for m in listed] == SHIPPED
    assert {a: m["name"] for m in listed for a in m["aliases"]} == ALIASES
    for width in (200, 80):  # names and aliases are never cut, even on a narrow terminal
        console = Console(record=True, width=width)
        console.print(models_table(shipped_models()))
        shown = console.export_text()
        for model in listed:
            assert model["name"] in shown and model["task"] in shown
            assert all(alias in shown for alias in model["aliases"])


def test_describe_model_is_what_a_session_reads(tiny_model: Path) -> None:
    info = describe_model(str(tiny_model))
    assert info["path"] == str(tiny_model)
    assert info["size_bytes"] == tiny_model.stat().st_size
    assert "CPUExecutionProvider" in info["providers_available"]
    assert info["manifest"] == open_session(tiny_model, device="cpu").manifest
    assert describe_model("kjv")["manifest"].task == "language-model"


def test_write_manifest_json_round_trips(tiny_model: Path, tmp_path: Path) -> None:
    manifest = open_session(tiny_model, device="cpu").manifest
    out = tmp_path / "deeper" / "tiny.manifest.json"
    write_manifest_json(manifest, out)
    text = out.read_text(encoding="utf-8")
    assert json.loads(text) == dataclasses.asdict(manifest)
    assert Manifest.from_json(text) == manifest
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp file left


def test_generate_by_name_is_generate_by_path() -> None:
    options = ["--prompt", "And God said", "--max-new-tokens", "20", "--temperature", "0"]
    by_path = succeeded(invoke("infer", "generate", MODELS / "kjv-char-lstm.onnx", *options))
    by_alias = succeeded(invoke("infer", "generate", "kjv", *options))
    by_default = succeeded(invoke("infer", "generate", *options))
    assert by_alias.stdout == by_path.stdout == by_default.stdout
    assert by_path.stdout.startswith("And God said") and len(by_path.stdout) > 20


def test_classify_by_alias_names_the_language() -> None:
    text = "Das Wetter war heute sehr kalt"
    result = succeeded(invoke("infer", "classify", "langid", text, "--json"))
    assert json.loads(result.stdout.splitlines()[0])["label"] == "de"


def test_cli_unknown_model_name_is_one_line() -> None:
    result = invoke("infer", "classify", "klingon", "nuqneH")
    error_line(result, "'klingon'", "rnnedge models")
    assert result.exit_code == 1


def test_doctor_reports_the_resolved_default(monkeypatch: pytest.MonkeyPatch) -> None:
    report = doctor.diagnose()
    assert report["default_model"] == str(MODELS / f"{catalog.DEFAULT_MODEL}.onnx")
    monkeypatch.setenv("RNNEDGE_MODEL", "fashion")
    assert doctor.diagnose()["default_model"] == str(MODELS / "fashion-mnist-rows.onnx")
    monkeypatch.setenv("RNNEDGE_MODEL", "klingon")
    report = doctor.diagnose()
    assert report["default_model"] is None
    assert any("klingon" in p for p in report["problems"])
