"""Whether onnxruntime can really run on CUDA here, and if not, why (never torch).

onnxruntime-gpu lists ``CUDAExecutionProvider`` whether or not there is a GPU, a driver,
the CUDA runtime, cuBLAS and cuDNN; a session asked for CUDA then runs on the CPU, with
only a log line on stderr to say so. So the provider list proves nothing: `cuda_status`
opens a tiny session on the CUDA provider alone, runs it once, and checks which provider
it got. When that fails it names what is missing twice over: each shared library the
build needs, tried with ``ctypes`` (the driver's ``libcuda.so.1``, the CUDA runtime,
cuBLAS, cuRAND, cuDNN), and onnxruntime's own error, read from its log.

Before probing, the CUDA and cuDNN libraries that NVIDIA's pip wheels install (the
``nvidia-*`` packages, e.g. torch's CUDA build or ``onnxruntime-gpu[cuda,cudnn]``) are
loaded with onnxruntime's ``preload_dlls`` and, failing that, from any ``nvidia/*/lib``
folder on ``sys.path``: the loader does not look there by itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import io
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CUDA = "CUDAExecutionProvider"
# A model computing y = Identity(x) for x: float[1] (opset 17), serialized by onnx.helper:
# the runtime does not depend on the onnx package, so the bytes are written out here.
TINY_MODEL = bytes.fromhex(
    "08081207726e6e656467653a3b0a100a017812017922084964656e74697479120570726f62655a0f0a01"
    "78120a0a08080112040a020801620f0a0179120a0a08080112040a02080142040a001011"
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class CudaStatus:
    """What the probe found. `reason` says why CUDA cannot run ("" when it can)."""

    usable: bool
    reason: str = ""
    listed: bool = False  # whether onnxruntime lists the CUDA provider at all
    built_for: str | None = None  # the CUDA version the onnxruntime build was made for
    missing_libraries: tuple[str, ...] = ()
    onnxruntime_error: str = ""
    libraries: dict[str, bool] = field(default_factory=dict)  # soname -> loads

    def to_dict(self) -> dict[str, Any]:
        return {
            "usable": self.usable,
            "reason": self.reason,
            "provider_listed": self.listed,
            "built_for_cuda": self.built_for,
            "libraries": dict(self.libraries),
            "missing_libraries": list(self.missing_libraries),
            "onnxruntime_error": self.onnxruntime_error,
        }


def built_for_cuda(ort: Any) -> str | None:
    """The CUDA version an onnxruntime-gpu build was made for ('13.0'), else None."""
    version = getattr(ort, "cuda_version", None)
    if not version:
        with contextlib.suppress(ImportError):
            from onnxruntime.capi import build_and_package_info as info

            version = getattr(info, "cuda_version", None)
    return str(version) if version else None


def required_libraries(cuda_version: str | None) -> dict[str, str]:
    """soname -> what it is, for the libraries the CUDA provider of a build for
    `cuda_version` loads (the provider library's NEEDED entries, and cuDNN 9, which it
    opens for the LSTM/GRU/RNN kernels), in the order they depend on each other."""
    major = (cuda_version or "").split(".")[0]
    libraries = {"libcuda.so.1": "the NVIDIA driver"}
    if major.isdigit():
        libraries |= {
            f"libcudart.so.{major}": f"the CUDA {major} runtime",
            f"libcublasLt.so.{major}": f"cuBLASLt, CUDA {major}",
            f"libcublas.so.{major}": f"cuBLAS, CUDA {major}",
        }
    return libraries | {"libcurand.so.10": "cuRAND", "libcudnn.so.9": "cuDNN 9"}


def loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def preload_nvidia_libraries(ort: Any, sonames: list[str]) -> None:
    """Load the CUDA/cuDNN libraries of NVIDIA's pip wheels, quietly: onnxruntime's
    preload_dlls prints to stdout (where generated text goes) when one is missing."""
    with (
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
        contextlib.suppress(Exception),
    ):
        warnings.simplefilter("ignore")
        ort.preload_dlls()
    for soname in sonames:
        if not loads(soname):
            load_from_wheels(soname)


def load_from_wheels(soname: str) -> bool:
    """Load the first `nvidia/*/lib/<soname>` on sys.path that loads (one copy only)."""
    for folder in sys.path:
        for candidate in sorted(glob.glob(os.path.join(folder, "nvidia", "*", "lib", soname))):
            try:
                ctypes.CDLL(candidate)
            except OSError:
                continue
            return True
    return False


@contextlib.contextmanager
def captured_stderr() -> Iterator[io.StringIO]:
    """Capture file descriptor 2 (onnxruntime's C++ logger writes there, not to
    sys.stderr); the text is in the yielded buffer once the block ends."""
    buffer = io.StringIO()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield buffer
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            buffer.write(ANSI.sub("", sink.read().decode("utf-8", "replace")))


def try_cuda_session(ort: Any) -> tuple[bool, str]:
    """Open TINY_MODEL on the CUDA provider alone and run it once: (ran on CUDA, what
    onnxruntime said when it did not)."""
    ran, error = False, ""
    with captured_stderr() as log:
        try:
            session = ort.InferenceSession(TINY_MODEL, providers=[CUDA])
            if session.get_providers()[0] == CUDA:
                session.run(None, {"x": np.zeros(1, dtype=np.float32)})
                ran = True
        except Exception as exc:  # ORT raises its own types (Fail, RuntimeException, ...)
            error = " ".join(str(exc).split())
    return ran, error or onnxruntime_complaint(log.getvalue())


def onnxruntime_complaint(log: str) -> str:
    """The informative part of onnxruntime's log about a CUDA provider that did not start:
    the library it could not load, else its first error or warning line."""
    found = re.search(r"with error: ([^\n]+)", log)
    if found:
        return found.group(1).strip()
    for line in log.splitlines():
        if re.search(r"\[[EW]:onnxruntime", line):
            return re.sub(r"^.*?\] ", "", line.split(" operator()] ")[-1]).strip()[:300]
    return ""


def explain(libraries: dict[str, bool], wanted: dict[str, str], error: str) -> str:
    """One sentence: the driver if it is missing, the other libraries that are (named and
    described), and what onnxruntime said."""
    parts = []
    if not libraries.get("libcuda.so.1", True):
        parts.append("no NVIDIA driver (libcuda.so.1 not found: no GPU here, or no driver)")
    missing = [
        f"{name} ({wanted[name]})"
        for name, ok in libraries.items()
        if not ok and name != "libcuda.so.1"
    ]
    if missing:
        parts.append("cannot load " + ", ".join(missing))
    if error:
        parts.append(f"onnxruntime: {error}")
    return "; ".join(parts) or "the CUDA provider did not start (onnxruntime gave no reason)"


def probe_cuda(ort: Any) -> CudaStatus:
    """Whether a session on the CUDA provider really runs with this onnxruntime here."""
    built_for = built_for_cuda(ort)
    if CUDA not in ort.get_available_providers():
        version = getattr(ort, "__version__", "?")
        return CudaStatus(
            usable=False,
            reason=f"this onnxruntime ({version}) has no CUDA provider: it is the CPU build; "
            "for CUDA: pip uninstall -y onnxruntime && pip install 'rnnedge[gpu]'",
            built_for=built_for,
        )
    wanted = required_libraries(built_for)
    preload_nvidia_libraries(ort, [n for n in wanted if n != "libcuda.so.1"])
    libraries = {name: loads(name) for name in wanted}
    ran, error = try_cuda_session(ort)
    missing = tuple(name for name, ok in libraries.items() if not ok)
    return CudaStatus(
        usable=ran,
        reason="" if ran else explain(libraries, wanted, error),
        listed=True,
        built_for=built_for,
        missing_libraries=missing,
        onnxruntime_error="" if ran else error,
        libraries=libraries,
    )


@functools.cache
def cuda_status() -> CudaStatus:
    """probe_cuda for the onnxruntime installed here, once per process."""
    from rnnedge.runtime.session import import_onnxruntime

    return probe_cuda(import_onnxruntime())
