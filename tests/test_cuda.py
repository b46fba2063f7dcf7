"""Device choice without a GPU: `--device cuda` runs on CUDA or fails in one line naming why,
`--device auto` takes CUDA only where a CUDA session really runs and says which provider
it chose, and the CUDA probe reads what onnxruntime and the loader report.

The probe is replaced by fixed answers here (the GPU-present branches), or by a fake
onnxruntime module that fails the way onnxruntime-gpu does on a machine without a driver.
tests/test_doctor.py runs the real onnxruntime-gpu wheel.
"""

from __future__ import annotations

import _ctypes
import os
import shutil
import sys
from typing import Any

import numpy as np
import pytest

from helpers import ANSI, error_line, invoke, succeeded
from rnnedge.errors import DeviceError, ModelError
from rnnedge.runtime import cuda, load_classifier, load_generator, session
from rnnedge.runtime.cuda import CudaStatus, probe_cuda
from rnnedge.runtime.graph import BoundSteps
from rnnedge.runtime.session import CUDA_PROVIDER, choose_providers

CPU = "CPUExecutionProvider"
WORKS = CudaStatus(usable=True, listed=True, built_for="13.0")
NO_DRIVER = CudaStatus(
    usable=False,
    reason="no NVIDIA driver (libcuda.so.1 not found: no GPU here, or no driver)",
    listed=True,
    built_for="13.0",
)
CPU_BUILD = CudaStatus(usable=False, reason="this onnxruntime (1.32.0) has no CUDA provider")


def never() -> CudaStatus:
    raise AssertionError("--device cpu must not probe CUDA")


@pytest.mark.parametrize(
    ("device", "status", "providers", "note"),
    [
        ("cpu", None, [CPU], None),
        ("cuda", WORKS, [CUDA_PROVIDER, CPU], None),
        ("auto", WORKS, [CUDA_PROVIDER, CPU], "--device auto: running on CUDA"),
        ("auto", NO_DRIVER, [CPU], "libcuda.so.1"),  # the fallback says why
        ("auto", CPU_BUILD, [CPU], None),  # a CPU build has nothing to fall back from
    ],
)
def test_choose_providers(device, status, providers, note) -> None:
    chosen, said = choose_providers(device, (lambda: status) if status else never)
    assert chosen == providers
    if note is None:
        assert said is None
    else:
        assert note in said and ("CPU" in said) == (providers == [CPU])


@pytest.mark.parametrize("status", [NO_DRIVER, CPU_BUILD])
def test_device_cuda_that_cannot_run_is_an_error_saying_why(status: CudaStatus) -> None:
    with pytest.raises(DeviceError, match="--device cuda cannot run here") as raised:
        choose_providers("cuda", lambda: status)
    assert status.reason in str(raised.value) and "--device cpu" in str(raised.value)


def test_unknown_device_is_refused_before_probing() -> None:
    with pytest.raises(DeviceError, match="auto, cpu, cuda"):
        choose_providers("gpu", never)


def notes(stderr: str) -> list[str]:
    return [line for line in ANSI.sub("", stderr).splitlines() if line.startswith("note:")]


GENERATE = ("infer", "generate", "--prompt", "the", "--max-new-tokens", "5", "--seed", "0")


def test_auto_fallback_is_one_note_naming_the_reason(tiny_model, monkeypatch) -> None:
    monkeypatch.setattr(session, "cuda_status", lambda: NO_DRIVER)
    result = succeeded(invoke(*GENERATE, tiny_model, "--device", "auto"))
    assert len(result.stdout.rstrip("\n")) == len("the") + 5
    (note,) = notes(result.stderr)
    assert "running on the CPU" in note and "libcuda.so.1" in note


def test_device_cuda_fails_in_one_line_when_cuda_cannot_run(tiny_model, monkeypatch) -> None:
    monkeypatch.setattr(session, "cuda_status", lambda: NO_DRIVER)
    result = invoke(*GENERATE, tiny_model, "--device", "cuda")
    error_line(result, "--device cuda cannot run here", "libcuda.so.1", "--device cpu")
    assert result.stdout == ""


def test_cpu_build_auto_is_quiet_and_cuda_names_the_build(tiny_model, monkeypatch) -> None:
    """The real probe on this checkout's CPU onnxruntime: nothing listed, nothing said."""
    if cuda.cuda_status().listed:
        pytest.skip("this onnxruntime has a CUDA provider (the GPU build is installed)")
    assert notes(succeeded(invoke(*GENERATE, tiny_model)).stderr) == []
    error_line(invoke(*GENERATE, tiny_model, "--device", "cuda"), "no CUDA provider", "[gpu]")


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider'")
def test_a_model_that_does_not_get_cuda_is_caught_after_loading(tiny_model, monkeypatch) -> None:
    """The probe says CUDA runs but this onnxruntime (the CPU build) gives the model the
    CPU: cuda is an error, auto runs on the CPU and says so."""
    if cuda.cuda_status().usable:
        pytest.skip("CUDA really runs here")
    monkeypatch.setattr(session, "cuda_status", lambda: WORKS)
    error_line(
        invoke(*GENERATE, tiny_model, "--device", "cuda"),
        "--device cuda",
        "onnxruntime put it on CPUExecutionProvider",
    )
    result = succeeded(invoke(*GENERATE, tiny_model, "--device", "auto"))
    (note,) = notes(result.stderr)
    assert "running on the CPU" in note and "put it on CPUExecutionProvider" in note


def cuda_open_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """CUDA 'runs' (probe), but opening a model on it fails the way a cuDNN error does."""
    import onnxruntime

    real = onnxruntime.InferenceSession

    def opening(data: bytes, sess_options: Any = None, providers: Any = None) -> Any:
        if providers and providers[0] == CUDA_PROVIDER:
            raise RuntimeError("CUDNN failure 3: CUDNN_STATUS_BAD_PARAM\nmore detail")
        return real(data, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(onnxruntime, "InferenceSession", opening)
    monkeypatch.setattr(session, "cuda_status", lambda: WORKS)


def test_a_model_that_fails_to_open_on_cuda(tiny_model, monkeypatch) -> None:
    """auto opens it on the CPU and names onnxruntime's error in one note; cuda refuses in
    one line; a file that opens nowhere is still 'not a loadable ONNX model'."""
    cuda_open_fails(monkeypatch)
    result = succeeded(invoke(*GENERATE, tiny_model, "--device", "auto"))
    (note,) = notes(result.stderr)
    assert "running on the CPU" in note and "CUDNN_STATUS_BAD_PARAM" in note
    error_line(
        invoke(*GENERATE, tiny_model, "--device", "cuda"), "could not be opened on CUDA", "CUDNN"
    )


def test_a_broken_file_is_a_model_error_whatever_the_device(tmp_path, monkeypatch) -> None:
    cuda_open_fails(monkeypatch)
    broken = tmp_path / "broken.onnx"  # well-formed protobuf, an operator nobody has
    broken.write_bytes(cuda.TINY_MODEL.replace(b"Identity", b"Identitx"))
    for device in ("auto", "cuda"):
        with pytest.raises(ModelError, match="not a loadable ONNX model"):
            session.open_session(broken, device=device)


def test_device_cpu_is_quiet_and_never_probes(tiny_model, monkeypatch) -> None:
    monkeypatch.setattr(session, "cuda_status", never)
    assert notes(succeeded(invoke(*GENERATE, tiny_model, "--device", "cpu")).stderr) == []


# --------------------------------------------------------------------------------------
# The probe, against a fake onnxruntime module
# --------------------------------------------------------------------------------------

ORT_LOG = (
    "\x1b[1;31m2026-11-25 12:07:20 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 "
    "operator()] /src/provider_bridge_ort.cc:2043 onnxruntime::ProviderLibrary::Get() "
    "[ONNXRuntimeError] : 1 : FAIL : Failed to load library /x/libonnxruntime_providers_cuda.so "
    "with error: libcublasLt.so.13: cannot open shared object file: No such file or directory\n"
    "\x1b[m\x1b[0;93m2026-11-25 [W:onnxruntime:Default, onnxruntime_pybind_state.cc:1295 "
    "CreateExecutionProviderFactoryInstance] Failed to create CUDAExecutionProvider. Require "
    "cuDNN 9.* and CUDA 13.*.\x1b[m\n"
)


class FakeSession:
    def __init__(self, providers: list[str], log: str = "", error: Exception | None = None):
        if log:
            os.write(2, log.encode())  # where onnxruntime's C++ logger writes
        if error:
            raise error
        self.providers = providers

    def get_providers(self) -> list[str]:
        return self.providers

    def run(self, names: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [feeds["x"]]


class FakeOrt:
    """onnxruntime-gpu built for CUDA 13: lists CUDA; sessions get `gets`."""

    __version__ = "1.31.1"
    cuda_version = "13.0"

    def __init__(self, gets: list[str], log: str = "", error: Exception | None = None):
        self.gets, self.log, self.error, self.preloaded = gets, log, error, False

    def get_available_providers(self) -> list[str]:
        return ["CUDAExecutionProvider", CPU]

    def preload_dlls(self) -> None:
        print("Failed to load libcudnn.so.9")  # what the real one prints to stdout
        self.preloaded = True

    def InferenceSession(self, model: bytes, providers: list[str]) -> FakeSession:
        assert providers == ["CUDAExecutionProvider"]  # CUDA alone: no silent CPU
        return FakeSession(self.gets, self.log, self.error)


def fake_loader(monkeypatch, missing: set[str]) -> None:
    monkeypatch.setattr(cuda, "loads", lambda soname: soname not in missing)


def test_probe_names_missing_libraries_and_onnxruntime_s_error(monkeypatch, capfd) -> None:
    fake_loader(monkeypatch, {"libcuda.so.1", "libcublasLt.so.13", "libcudnn.so.9"})
    ort = FakeOrt(gets=[CPU], log=ORT_LOG)
    status = probe_cuda(ort)
    assert not status.usable and status.listed and status.built_for == "13.0" and ort.preloaded
    assert status.missing_libraries == ("libcuda.so.1", "libcublasLt.so.13", "libcudnn.so.9")
    assert status.onnxruntime_error.startswith("libcublasLt.so.13: cannot open shared object")
    assert "no NVIDIA driver" in status.reason and "cuDNN 9" in status.reason
    assert "libcudart.so.13" not in status.reason  # it loads
    out, err = capfd.readouterr()
    assert out == "" and "Failed to load library" not in err  # the log and prints are held


def test_probe_reports_an_exception_when_there_is_no_log(monkeypatch) -> None:
    fake_loader(monkeypatch, set())
    status = probe_cuda(FakeOrt(gets=[CPU], error=RuntimeError("CUDA failure 100:\n no device")))
    assert not status.usable and status.missing_libraries == ()
    assert status.reason == "onnxruntime: CUDA failure 100: no device"


def test_probe_says_so_when_cuda_gives_no_reason(monkeypatch) -> None:
    fake_loader(monkeypatch, set())
    status = probe_cuda(FakeOrt(gets=[CPU]))
    assert not status.usable and "gave no reason" in status.reason


def test_probe_accepts_a_session_that_ran_on_cuda(monkeypatch) -> None:
    fake_loader(monkeypatch, set())
    status = probe_cuda(FakeOrt(gets=["CUDAExecutionProvider", CPU]))
    assert status.usable and status.reason == "" and all(status.libraries.values())


def test_probe_on_a_cpu_build_says_which_extra_to_install() -> None:
    class CpuOrt:
        __version__ = "1.32.0"

        def get_available_providers(self) -> list[str]:
            return [CPU]

    status = probe_cuda(CpuOrt())
    assert not status.usable and not status.listed and "rnnedge[gpu]" in status.reason


def test_required_libraries_follow_the_build_s_cuda_version() -> None:
    names = list(cuda.required_libraries("13.0"))
    assert names[0] == "libcuda.so.1" and "libcudart.so.13" in names
    assert names.index("libcublasLt.so.13") < names.index("libcublas.so.13")  # load order
    assert "libcudnn.so.9" in names and "libcudart.so.12" in cuda.required_libraries("12.8")


def test_libraries_of_nvidia_wheels_are_found_on_sys_path(tmp_path, monkeypatch) -> None:
    """A library in an nvidia/*/lib folder on sys.path is loaded from the first folder where
    it loads (a broken copy is passed over); none found is False."""
    broken = tmp_path / "a" / "nvidia" / "cu13" / "lib"
    good = tmp_path / "b" / "nvidia" / "cu13" / "lib"
    broken.mkdir(parents=True)
    good.mkdir(parents=True)
    (broken / "libstandin.so.13").write_bytes(b"not an ELF file")
    shutil.copy(_ctypes.__file__, good / "libstandin.so.13")  # any shared object that loads
    monkeypatch.setattr(sys, "path", [str(tmp_path / "a"), str(tmp_path / "b")])
    assert cuda.load_from_wheels("libstandin.so.13")
    assert not cuda.load_from_wheels("libabsent.so.13")


# --------------------------------------------------------------------------------------
# On a machine where CUDA really runs (skipped elsewhere, saying why)
# --------------------------------------------------------------------------------------

CUDA_RUNS = cuda.cuda_status().usable
needs_cuda = pytest.mark.skipif(
    not CUDA_RUNS, reason=f"needs CUDA, which cannot run here: {cuda.cuda_status().reason}"
)


@needs_cuda
def test_bound_steps_keep_the_state_on_cuda_and_match_the_cpu(tiny_model) -> None:
    """Generation's step path on CUDA: the state buffers are CUDA memory that onnxruntime
    writes in place (their addresses stay), and logits and state match the CPU's."""
    on_cpu = load_generator(tiny_model, device="cpu")
    on_cuda = load_generator(tiny_model, device="cuda")
    assert on_cuda.provider == "CUDAExecutionProvider"
    steps = BoundSteps(on_cuda, on_cuda.initial_state(1), on_cuda.vocab_size)
    buffers = [value for values in steps._sets for value in values.values()]
    assert {value.device_name() for value in buffers} == {"cuda"}
    addresses = [value.data_ptr() for value in buffers]
    state = on_cpu.initial_state(1)
    for token in np.random.default_rng(4).integers(0, on_cpu.vocab_size, 40):
        expected, state = on_cpu.run(np.array([[token]], dtype=np.int64), state)  # [1, 1, V]
        assert np.abs(steps.step(int(token)) - expected[0, -1]).max() < 1e-3
    assert [value.data_ptr() for value in buffers] == addresses
    for name, value in steps.state().items():
        assert np.abs(value - state[name]).max() < 1e-3


@needs_cuda
def test_auto_on_a_working_gpu_runs_on_cuda_and_says_so(tiny_model) -> None:
    result = succeeded(invoke(*GENERATE, tiny_model, "--stats"))
    assert notes(result.stderr) == ["note: --device auto: running on CUDA"]
    assert "CUDAExecutionProvider" in ANSI.sub("", result.stderr)


@needs_cuda
def test_classification_on_cuda_matches_the_cpu() -> None:
    texts = ["Das Wetter war heute sehr kalt", "The weather was very cold today"]
    on_cpu = load_classifier("langid", device="cpu").classify(texts)
    on_cuda = load_classifier("langid", device="cuda")
    assert on_cuda.provider == "CUDAExecutionProvider"
    for cpu, gpu in zip(on_cpu, on_cuda.classify(texts), strict=True):
        assert gpu.label == cpu.label
        assert np.abs(gpu.probabilities - cpu.probabilities).max() < 1e-3
