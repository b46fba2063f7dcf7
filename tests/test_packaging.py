"""Packaging: exactly one onnxruntime build per install, and doctor flags two."""

from __future__ import annotations

from pathlib import Path

import tomllib
from typer.testing import CliRunner

from rnnedge import doctor
from rnnedge.cli import app

PYPROJECT = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())


def names(requirements: list[str]) -> set[str]:
    return {r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip() for r in requirements}


def test_base_install_has_no_onnxruntime_and_each_extra_exactly_one():
    project = PYPROJECT["project"]
    ort = {"onnxruntime", "onnxruntime-gpu"}
    assert names(project["dependencies"]) == {"numpy", "typer", "rich"}
    extras = project["optional-dependencies"]
    assert names(extras["cpu"]) & ort == {"onnxruntime"}
    assert names(extras["gpu"]) & ort == {"onnxruntime-gpu"}
    for extra in ("train", "dev"):
        assert not names(extras[extra]) & ort, extra  # never drags in a second build


def test_torch_range_admits_the_local_cpu_wheel_and_nothing_newer():
    torch_pin = next(
        r for r in PYPROJECT["project"]["optional-dependencies"]["train"] if r.startswith("torch")
    )
    assert "<=2.13.0" in torch_pin


def test_doctor_flags_both_onnxruntime_builds(monkeypatch):
    versions = {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.32.0"}
    monkeypatch.setattr(doctor, "installed_version", lambda name: versions.get(name))
    report = doctor.diagnose()
    assert any("both onnxruntime and onnxruntime-gpu" in p for p in report["problems"])
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 1 and "break each other" in result.output


def test_doctor_is_clean_here(tiny_model, monkeypatch):
    monkeypatch.setenv("RNNEDGE_MODEL", str(tiny_model))
    result = CliRunner().invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
