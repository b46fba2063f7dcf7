"""`rnnedge doctor`: the onnxruntime build, whether CUDA really runs and why not, the GPU.

The GPU-present branches use a stand-in `nvidia-smi` on PATH and fixed CUDA probe
answers. The slow test installs the real onnxruntime-gpu wheel (the `gpu` extra's pin
from pyproject.toml) into a throwaway venv and checks doctor's account of why CUDA cannot
run against onnxruntime's own log and the loader's cache, read independently.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import tomllib

from helpers import ANSI, invoke
from rnnedge import doctor
from rnnedge.runtime import cuda
from rnnedge.runtime.cuda import CudaStatus

ROOT = Path(__file__).resolve().parents[1]
WORKS = CudaStatus(usable=True, listed=True, built_for="13.0")
NO_CUDNN = CudaStatus(
    usable=False,
    reason="cannot load libcudnn.so.9 (cuDNN 9)",
    listed=True,
    built_for="13.0",
    missing_libraries=("libcudnn.so.9",),
)
SMI_OK = (
    'echo "NVIDIA H100 80GB HBM3, 580.159.04, 81559 MiB"\necho "NVIDIA H200, 580.1, 143771 MiB"'
)
SMI_BROKEN = (
    'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."\nexit 9'
)


def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str | None) -> None:
    """PATH holds only a stand-in nvidia-smi running `body` (None: no nvidia-smi at all)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    if body is not None:
        script = folder / "nvidia-smi"
        script.write_text(f'#!/bin/sh\n[ "$1" = "{doctor.NVIDIA_SMI_QUERY}" ] || exit 3\n{body}\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))


def test_nvidia_smi_names_each_gpu_and_its_driver(tmp_path, monkeypatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, SMI_OK)
    gpus = doctor.nvidia_gpus()
    assert gpus["reason"] == ""
    assert gpus["gpus"] == [
        {"name": "NVIDIA H100 80GB HBM3", "driver": "580.159.04", "memory": "81559 MiB"},
        {"name": "NVIDIA H200", "driver": "580.1", "memory": "143771 MiB"},
    ]


def test_nvidia_smi_failing_or_absent_is_said(tmp_path, monkeypatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, SMI_BROKEN)
    broken = doctor.nvidia_gpus()
    assert (
        broken["gpus"] == [] and "couldn't communicate with the NVIDIA driver" in broken["reason"]
    )
    (tmp_path / "bin" / "nvidia-smi").unlink()
    absent = doctor.nvidia_gpus()
    assert absent["gpus"] == [] and "no nvidia-smi" in absent["reason"]


def gpu_build(monkeypatch: pytest.MonkeyPatch, status: CudaStatus, model: Path) -> None:
    """doctor sees onnxruntime-gpu alone installed and `status` from the CUDA probe."""
    versions = {"onnxruntime-gpu": "1.31.1"}
    monkeypatch.setattr(doctor, "installed_version", lambda name: versions.get(name))
    monkeypatch.setattr(cuda, "cuda_status", lambda: status)
    monkeypatch.setenv("RNNEDGE_MODEL", str(model))


def test_doctor_on_a_working_gpu_is_clean(tiny_model, tmp_path, monkeypatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, SMI_OK)
    gpu_build(monkeypatch, WORKS, tiny_model)
    result = invoke("doctor")
    text = ANSI.sub("", result.stdout)
    assert result.exit_code == 0, text
    assert "runs: a CUDA session was created and ran" in text
    assert "NVIDIA H100 80GB HBM3, driver 580.159.04" in text


def test_doctor_flags_a_gpu_build_that_cannot_run_cuda(tiny_model, tmp_path, monkeypatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, SMI_OK)
    gpu_build(monkeypatch, NO_CUDNN, tiny_model)
    result = invoke("doctor", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["cuda"]["missing_libraries"] == ["libcudnn.so.9"]
    (problem,) = report["problems"]
    assert "onnxruntime-gpu is installed but CUDA cannot run" in problem
    table = ANSI.sub("", invoke("doctor").stdout)
    assert "cannot run: cannot load libcudnn.so.9" in " ".join(table.split())


def test_doctor_on_a_cpu_build_with_a_gpu_says_so_without_a_problem(
    tiny_model, tmp_path, monkeypatch
) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, SMI_OK)
    monkeypatch.setattr(doctor, "installed_version", {"onnxruntime": "1.32.0"}.get)
    cpu_build = CudaStatus(usable=False, reason="this onnxruntime (1.32.0) has no CUDA provider")
    monkeypatch.setattr(cuda, "cuda_status", lambda: cpu_build)
    monkeypatch.setenv("RNNEDGE_MODEL", str(tiny_model))
    report = doctor.diagnose()
    assert report["problems"] == []
    assert report["cuda"]["reason"].endswith("(an NVIDIA GPU is here)")


# --------------------------------------------------------------------------------------
# The real onnxruntime-gpu wheel, on this machine (no GPU expected)
# --------------------------------------------------------------------------------------


def gpu_requirements() -> list[str]:
    """The base dependencies and the `gpu` extra, as pyproject.toml declares them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["gpu"]]


@pytest.fixture(scope="module")
def gpu_python() -> Path:
    """A venv's python holding the `gpu` extra (onnxruntime-gpu, ~255 MB download), kept in
    the temp folder between runs under a name made from the requirements and this Python.
    rnnedge itself comes from the checkout (PYTHONPATH)."""
    requirements = gpu_requirements()
    key = hashlib.sha256(json.dumps([requirements, sys.version]).encode()).hexdigest()[:12]
    venv = Path(tempfile.gettempdir()) / f"rnnedge-test-gpu-venv-{key}"
    if (venv / "ready").exists():
        return venv / "bin" / "python"
    building = Path(tempfile.mkdtemp(prefix=venv.name + "-"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", building], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(building / "bin" / "python")]
    done = subprocess.run(
        [*pip, "install", "-q", "--disable-pip-version-check", *requirements],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        said = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        pytest.skip(f"the gpu extra could not be installed here: {said}")
    (building / "ready").touch()
    try:
        building.rename(venv)
    except OSError:  # another run finished first: use its venv
        shutil.rmtree(building, ignore_errors=True)
    return venv / "bin" / "python"


def run_in(python: Path, *args: str, model: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RNNEDGE_MODEL": str(model)}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [str(python), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


BARE_SESSION = """
import json, sys, onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CUDAExecutionProvider"])
print(json.dumps(session.get_providers()))
"""


def onnxruntime_alone(python: Path, model: Path, cwd: Path) -> tuple[bool, str]:
    """What onnxruntime itself does, without rnnedge: whether a CUDA-only session gets the
    CUDA provider, and the library its log says it could not load ('' if none)."""
    done = run_in(python, "-c", BARE_SESSION, str(model), model=model, cwd=cwd)
    assert done.returncode == 0, done.stderr
    providers = json.loads(done.stdout)
    library = re.search(r"with error: (\S+?):", ANSI.sub("", done.stderr))
    return providers[0] == "CUDAExecutionProvider", library.group(1) if library else ""


def driver_in_loader_cache() -> bool | None:
    """Whether the loader's cache lists libcuda.so.1 (None: no ldconfig to ask)."""
    ldconfig = shutil.which("ldconfig") or next(
        (p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if Path(p).exists()), None
    )
    if ldconfig is None:
        return None
    listing = subprocess.run([ldconfig, "-p"], capture_output=True, text=True).stdout
    return "libcuda.so.1 " in listing


@pytest.mark.slow
def test_real_onnxruntime_gpu_doctor_says_exactly_why_cuda_cannot_run(
    gpu_python, tiny_model, tmp_path
) -> None:
    ran_on_cuda, unloadable = onnxruntime_alone(gpu_python, tiny_model, tmp_path)
    done = run_in(gpu_python, "-m", "rnnedge", "doctor", "--json", model=tiny_model, cwd=tmp_path)
    report = json.loads(done.stdout)
    assert list(report["onnxruntime_builds"]) == ["onnxruntime-gpu"]
    assert report["onnxruntime_module"]["distribution"] == "onnxruntime-gpu"
    assert report["onnxruntime_module"]["built_for_cuda"].startswith("13.")
    assert "CUDAExecutionProvider" in report["providers"]  # listed, whatever the machine
    assert report["cuda"]["usable"] == ran_on_cuda
    if ran_on_cuda:
        assert done.returncode == 0 and report["problems"] == []
        return
    assert done.returncode == 1
    assert any("CUDA cannot run" in problem for problem in report["problems"])
    reason = report["cuda"]["reason"]
    assert unloadable and unloadable in reason  # the library onnxruntime names
    assert unloadable in report["cuda"]["missing_libraries"]
    if driver_in_loader_cache() is False:
        assert (
            "no NVIDIA driver" in reason and "libcuda.so.1" in report["cuda"]["missing_libraries"]
        )


@pytest.mark.slow
def test_real_onnxruntime_gpu_device_choice_without_a_gpu(gpu_python, tiny_model, tmp_path) -> None:
    if onnxruntime_alone(gpu_python, tiny_model, tmp_path)[0]:
        pytest.skip("CUDA runs here: the fallback cannot be observed")
    generate = ["-m", "rnnedge", "infer", "generate", str(tiny_model), "--prompt", "the"]
    generate += ["--max-new-tokens", "5", "--seed", "0"]
    auto = run_in(gpu_python, *generate, model=tiny_model, cwd=tmp_path)
    assert auto.returncode == 0, auto.stderr
    assert len(auto.stdout.rstrip("\n")) == len("the") + 5
    stderr = ANSI.sub("", auto.stderr).strip().splitlines()
    assert len(stderr) == 1 and stderr[0].startswith("note: --device auto: running on the CPU")
    forced = run_in(gpu_python, *generate, "--device", "cuda", model=tiny_model, cwd=tmp_path)
    lines = ANSI.sub("", forced.stderr).strip().splitlines()
    assert forced.returncode == 1 and forced.stdout == ""
    assert len(lines) == 1 and lines[0].startswith("error: --device cuda cannot run here")
