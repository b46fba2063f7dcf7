"""Installation diagnosis: which onnxruntime build(s), providers, whether CUDA really runs
(and why not), the GPU and its driver, torch, the default model."""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import platform
import shutil
import subprocess
from typing import Any

import rnnedge
from rnnedge.errors import RnnedgeError

ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu")
NVIDIA_SMI_QUERY = "--query-gpu=name,driver_version,memory.total"


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
        "onnxruntime_module": None,
        "torch": installed_version("torch") if importlib.util.find_spec("torch") else None,
        "providers": [],
        "cuda": None,
        "gpu": nvidia_gpus(),
        "default_model": None,
        "problems": problems,
    }
    if ort_builds:
        from rnnedge.runtime import available_providers
        from rnnedge.runtime.cuda import cuda_status

        report["onnxruntime_module"] = imported_build()
        report["providers"] = available_providers()
        report["cuda"] = cuda_status().to_dict()
        check_cuda(report, problems)
        report["default_model"] = check_default_model(problems)
    return report


def imported_build() -> dict[str, Any]:
    """The build `import onnxruntime` gets (the one that wins when two are installed): its
    distribution name, version and the CUDA version it was made for."""
    from rnnedge.runtime.cuda import built_for_cuda
    from rnnedge.runtime.session import import_onnxruntime

    ort = import_onnxruntime()
    try:
        from onnxruntime.capi import build_and_package_info as info

        name = str(getattr(info, "package_name", "onnxruntime"))
    except ImportError:
        name = "onnxruntime"
    return {"distribution": name, "version": ort.__version__, "built_for_cuda": built_for_cuda(ort)}


def check_cuda(report: dict[str, Any], problems: list[str]) -> None:
    """A GPU build that cannot run CUDA is a problem (rnnedge would run on the CPU); a CPU
    build on a machine with an NVIDIA GPU is not, but the report's cuda.reason says so."""
    cuda = report["cuda"]
    if cuda["usable"]:
        return
    if "onnxruntime-gpu" in report["onnxruntime_builds"]:
        problems.append(
            "onnxruntime-gpu is installed but CUDA cannot run, so rnnedge runs on the CPU: "
            "install what the CUDA line names (cuda.reason), or use rnnedge[cpu] instead"
        )
    elif report["gpu"]["gpus"]:
        cuda["reason"] += " (an NVIDIA GPU is here)"


def nvidia_gpus() -> dict[str, Any]:
    """The GPUs nvidia-smi lists (name, driver, memory), or why there are none to list."""
    found: dict[str, Any] = {"gpus": [], "reason": ""}
    smi = shutil.which("nvidia-smi")
    if smi is None:
        found["reason"] = "no nvidia-smi on PATH: no NVIDIA driver installed"
        return found
    try:
        done = subprocess.run(
            [smi, NVIDIA_SMI_QUERY, "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        found["reason"] = f"nvidia-smi did not run: {exc}"
        return found
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip().splitlines()
        found["reason"] = f"nvidia-smi failed: {said[0] if said else f'exit {done.returncode}'}"
        return found
    for line in done.stdout.strip().splitlines():
        name, driver, memory = (part.strip() for part in [*line.split(","), "", ""][:3])
        found["gpus"].append({"name": name, "driver": driver, "memory": memory})
    if not found["gpus"]:
        found["reason"] = "nvidia-smi lists no GPU"
    return found


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
