"""Installation diagnosis: which onnxruntime build(s), providers, torch, the default model."""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import platform
from typing import Any

import rnnedge
from rnnedge.errors import RnnedgeError

ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu")


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def diagnose() -> dict[str, Any]:
    """Facts and problems; a problem is something that breaks or silently degrades rnnedge."""
    ort_builds = {d: v for d in ORT_DISTRIBUTIONS if (v := installed_version(d))}
    problems = []
    if len(ort_builds) > 1:
        problems.append(
            "both onnxruntime and onnxruntime-gpu are installed: they share one module "
            "and break each other; pip uninstall -y onnxruntime onnxruntime-gpu, "
            "then install exactly one of rnnedge[cpu] / rnnedge[gpu]"
        )
    if not ort_builds:
        problems.append("no onnxruntime installed: pip install 'rnnedge[cpu]' or 'rnnedge[gpu]'")
    report: dict[str, Any] = {
        "rnnedge": rnnedge.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "onnxruntime_builds": ort_builds,
        "torch": installed_version("torch") if importlib.util.find_spec("torch") else None,
        "providers": [],
        "default_model": None,
        "problems": problems,
    }
    if ort_builds:
        from rnnedge.runtime import available_providers

        report["providers"] = available_providers()
        report["default_model"] = check_default_model(problems)
    return report


def check_default_model(problems: list[str]) -> str | None:
    """The default model's resolved path ($RNNEDGE_MODEL or the shipped one), opened once to
    prove it loads; a failure is added to `problems`. None when it cannot be resolved."""
    from rnnedge.runtime.catalog import resolve_model
    from rnnedge.runtime.session import open_session

    try:
        path = resolve_model(None)
    except RnnedgeError as exc:
        problems.append(f"default model: {exc}")
        return None
    try:
        open_session(path, device="cpu")
    except RnnedgeError as exc:
        problems.append(f"default model: {exc}")
    return str(path.resolve())
