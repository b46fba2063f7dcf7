"""Packaging: the wheel carries the runtime and the shipped models; installed alone with the
`cpu` extra into a fresh venv (no torch, no $RNNEDGE_MODEL, run outside the checkout) it
generates with the default model and classifies with the language identifier by name; its
metadata names exactly one onnxruntime build per extra; doctor flags two builds.

The wheel is built from a copy of the package's sources, not in the checkout: setuptools'
build/ folder keeps files deleted since the last build and would put them in the wheel.
Marked slow (about 30 s: a venv, pip installs from its configured indexes and cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from typer.testing import CliRunner

from helpers import invoke, succeeded
from rnnedge import doctor
from rnnedge.cli import app

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(
    p.name for p in (ROOT / "models").iterdir() if p.suffix in {".onnx", ".json", ".md"}
)
ORT_BUILDS = {"onnxruntime", "onnxruntime-gpu"}
GENERATE = ["--prompt", "And God said", "--max-new-tokens", "20", "--temperature", "0"]
GERMAN = "Das Wetter war heute sehr kalt"


def test_every_subpackage_is_listed_for_the_wheel() -> None:
    """pyproject.toml lists packages explicitly (models/ is mapped in as rnnedge.models), so
    a new folder under rnnedge/ must be added there or the wheel silently lacks it."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "rnnedge").rglob("__init__.py")
    }
    listed = set(setuptools["packages"])
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - on_disk == {"rnnedge.models"}
    assert (ROOT / setuptools["package-dir"]["rnnedge.models"] / "__init__.py").is_file()


def test_doctor_flags_both_onnxruntime_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    versions = {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.32.0"}
    monkeypatch.setattr(doctor, "installed_version", lambda name: versions.get(name))
    report = doctor.diagnose()
    assert any("both onnxruntime and onnxruntime-gpu" in p for p in report["problems"])
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 1 and "break each other" in result.output


def test_doctor_is_clean_here(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNEDGE_MODEL", str(tiny_model))
    result = CliRunner().invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------------------
# The built wheel, installed into a fresh venv with the cpu extra only
# --------------------------------------------------------------------------------------


def run(*command: str | Path, cwd: Path | None = None) -> str:
    """Run a command without this checkout's environment leaking in; its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in {"RNNEDGE_MODEL", "PYTHONPATH"}}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in ("rnnedge", "models"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    # With build isolation, as `pip install .` builds: pip fetches the setuptools that
    # pyproject.toml asks for (a fresh venv's bundled one is too old for its license field).
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, source)
    (built,) = out.glob("rnnedge-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel with the cpu extra; pip takes the dependencies from
    its configured indexes and cache."""
    path = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", path)
    run(path / "bin" / "python", "-m", "pip", "install", "-q", f"{wheel}[cpu]")
    return path


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with no models/ folder and no checkout above it."""
    return tmp_path_factory.mktemp("elsewhere")


@pytest.mark.slow
def test_wheel_holds_the_package_and_the_shipped_models(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "rnnedge").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert sources <= names
    packaged = {n.removeprefix("rnnedge/models/") for n in names if n.startswith("rnnedge/models/")}
    assert packaged == {"__init__.py", *SHIPPED}
    with zipfile.ZipFile(wheel) as archive:
        for name in SHIPPED:
            inside = hashlib.sha256(archive.read(f"rnnedge/models/{name}")).hexdigest()
            assert inside == hashlib.sha256((ROOT / "models" / name).read_bytes()).hexdigest()
    assert not [n for n in names if n.endswith(".pyc") or n.startswith(("tests/", "models/"))]
    size_mb = wheel.stat().st_size / 1e6
    print(f"\n{wheel.name}: {size_mb:.2f} MB, {len(names)} files")
    # 15.5 MB since the poems model ships fp16 (10.3 MB: its int8 failed the export gates);
    # 18.8 MB since fortune-langid 3.0.0's n-gram tables (4.84 MB fp32, 1.27 MB int8).
    assert size_mb < 20, "the wheel should stay small: the shipped models dominate it"


@pytest.mark.slow
def test_installed_wheel_has_no_torch_and_one_onnxruntime(venv: Path, outside: Path) -> None:
    probe = (
        "import importlib.metadata as m, importlib.util as u, json, rnnedge;"
        "names = {d.metadata['Name'].lower() for d in m.distributions()};"
        "print(json.dumps({'names': sorted(names), 'torch': u.find_spec('torch') is not None,"
        " 'package': rnnedge.__file__, 'requires': m.requires('rnnedge')}))"
    )
    facts = json.loads(run(venv / "bin" / "python", "-c", probe, cwd=outside))
    assert not facts["torch"] and "torch" not in facts["names"]
    assert ORT_BUILDS & set(facts["names"]) == {"onnxruntime"}
    assert Path(facts["package"]).is_relative_to(venv)  # not the checkout
    check_requirements([Requirement(r) for r in facts["requires"]])


def check_requirements(requirements: list[Requirement]) -> None:
    """What the installed wheel's metadata declares, extra by extra."""

    def names(extra: str | None) -> set[str]:
        chosen = {"extra": extra} if extra else {"extra": ""}
        return {
            r.name.lower()
            for r in requirements
            if (r.marker is None and extra is None) or (r.marker and r.marker.evaluate(chosen))
        }

    assert names(None) == {"numpy", "typer", "rich"}  # the base install names no onnxruntime
    assert names("cpu") & ORT_BUILDS == {"onnxruntime"}
    assert names("gpu") & ORT_BUILDS == {"onnxruntime-gpu"}
    for extra in ("train", "dev", "bench", "plot"):
        assert not names(extra) & ORT_BUILDS, extra  # never drags in a second build
    (torch,) = [r for r in requirements if r.name == "torch"]
    # The CPU wheel on disk here, and nothing newer (a newer one could be a multi-GB CUDA build).
    assert torch.specifier.contains("2.13.0") and not torch.specifier.contains("2.13.1")


@pytest.mark.slow
def test_installed_wheel_generates_with_the_default_model(venv: Path, outside: Path) -> None:
    text = run(venv / "bin" / "rnnedge", "infer", "generate", *GENERATE, cwd=outside)
    here = succeeded(invoke("infer", "generate", ROOT / "models" / "kjv-char-lstm.onnx", *GENERATE))
    assert text == here.stdout and text.startswith("And God said")


@pytest.mark.slow
def test_installed_wheel_classifies_by_model_name(venv: Path, outside: Path) -> None:
    lines = run(
        venv / "bin" / "rnnedge", "infer", "classify", "langid", GERMAN, "--json", cwd=outside
    )
    assert json.loads(lines.splitlines()[0])["label"] == "de"


@pytest.mark.slow
def test_installed_wheel_lists_and_finds_its_models(venv: Path, outside: Path) -> None:
    listed = json.loads(run(venv / "bin" / "rnnedge", "models", "--json", cwd=outside))
    assert sorted(m["name"] + ".onnx" for m in listed) == [
        n for n in SHIPPED if n.endswith(".onnx")
    ]
    assert all(Path(m["path"]).is_relative_to(venv) for m in listed)
    assert "kjv-char-lstm" in run(venv / "bin" / "rnnedge", "models", cwd=outside)
    report = json.loads(run(venv / "bin" / "rnnedge", "doctor", "--json", cwd=outside))
    assert Path(report["default_model"]).is_relative_to(venv) and report["problems"] == []
