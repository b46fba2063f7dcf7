"""onnxruntime sessions: provider choice, threads, and reading the manifest (never torch).

The model file is read once; the manifest comes from ``custom_metadata_map``, which every
ORT binding exposes, so this module needs no ``onnx`` package either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnedge.contract import MANIFEST_KEY, Manifest
from rnnedge.errors import DependencyError, DeviceError, ModelError

DEVICES = ("auto", "cpu", "cuda")
# One intra-op thread is the measured default for small recurrent models: a step is a few
# small matrix-vector products, and a second thread costs more in hand-off than it saves.
DEFAULT_THREADS = 1
# Batched work (many streams, many inputs) has enough rows per step to split: a second
# core gave 1.5-1.8x on 2 cores (benchmarks/REPORT.md). Not measured beyond 2 cores; capped
# because a step of a few dozen rows leaves too little work per thread to split further.
MAX_BATCH_THREADS = 4


def workload_threads(requested: int | None, batched: bool) -> int | None:
    """Threads for a CLI workload: the user's --threads or $RNNEDGE_THREADS when given;
    otherwise one for a single stream or input, and up to MAX_BATCH_THREADS cores for
    batched work. None means open_session's default."""
    if requested is not None or "RNNEDGE_THREADS" in os.environ or not batched:
        return requested
    return max(1, min(os.cpu_count() or 1, MAX_BATCH_THREADS))


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise DependencyError(
            "onnxruntime is not installed: pip install 'rnnedge[cpu]' (or 'rnnedge[gpu]' for "
            "CUDA; never both)"
        ) from None
    return onnxruntime


def read_model_bytes(path: str | Path) -> bytes:
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file {str(path)!r} does not exist; check the path")
    if path.is_dir():
        raise ModelError(f"model path {str(path)!r} is a directory; pass an .onnx file")
    return path.read_bytes()


def choose_providers(device: str, available: list[str]) -> list[str]:
    """Providers for `device`; cuda that cannot run is an error, auto falls back to CPU."""
    if device not in DEVICES:
        raise DeviceError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        raise DeviceError(
            "--device cuda asked for, but this onnxruntime has no CUDA provider (available: "
            f"{', '.join(available)}); install 'rnnedge[gpu]' or use --device cpu"
        )
    if device in ("cuda", "auto") and has_cuda:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


@dataclass
class LoadedSession:
    """An ORT session with the model's manifest and the provider that actually runs it."""

    session: Any
    manifest: Manifest
    provider: str
    path: str


def open_session(
    source: str | Path | bytes, device: str = "auto", threads: int | None = None
) -> LoadedSession:
    """Open an rnnedge model (a path, or the model's bytes).

    ModelError if it is not an rnnedge model; DeviceError if `device` cannot run.
    """
    ort = import_onnxruntime()
    data = source if isinstance(source, bytes) else read_model_bytes(source)
    path = "<in-memory model>" if isinstance(source, bytes) else str(source)
    options = ort.SessionOptions()
    # EXTENDED, not ALL: level ALL only adds layout transforms for convolutions (no
    # measured change for our graphs) and crashes the CPU provider on fp16 graphs
    # (onnxruntime#15494), which --fp16 exports are.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.intra_op_num_threads = threads or int(
        os.environ.get("RNNEDGE_THREADS", DEFAULT_THREADS)
    )
    options.inter_op_num_threads = 1
    # Spinning threads steal the core from the Python loop (and from torch when both share
    # a process) between the short calls of a streaming step.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    providers = choose_providers(device, ort.get_available_providers())
    try:
        session = ort.InferenceSession(data, sess_options=options, providers=providers)
    except Exception as exc:  # ORT raises its own exception types for unparsable files
        first_line = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise ModelError(f"{path!r} is not a loadable ONNX model ({first_line})") from None
    metadata = session.get_modelmeta().custom_metadata_map
    if MANIFEST_KEY not in metadata:
        raise ModelError(
            f"{path!r} is an ONNX model but not an rnnedge model (no "
            f"{MANIFEST_KEY!r} metadata); export it with `rnnedge export`"
        )
    manifest = Manifest.from_json(metadata[MANIFEST_KEY])
    check_graph_matches(session, manifest, path)
    return LoadedSession(session, manifest, session.get_providers()[0], path)


def check_graph_matches(session: Any, manifest: Manifest, path: str) -> None:
    """The manifest's tensors must be the graph's: a mismatched file is refused at load."""
    graph_inputs = {i.name for i in session.get_inputs()}
    graph_outputs = {o.name for o in session.get_outputs()}
    missing = ({t.name for t in manifest.inputs} - graph_inputs) | (
        {t.name for t in manifest.outputs} - graph_outputs
    )
    if missing:
        raise ModelError(
            f"{path!r}: manifest names tensors the graph lacks "
            f"({', '.join(sorted(missing))}); re-export the model"
        )


def available_providers() -> list[str]:
    return list(import_onnxruntime().get_available_providers())
