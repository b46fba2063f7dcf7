"""onnxruntime sessions: provider choice, threads, and reading the manifest (never torch).

The model file is read once; the manifest comes from ``custom_metadata_map`` (Python's ORT
exposes it), so this module needs no ``onnx`` package either.

Model files are untrusted input. Before onnxruntime sees the bytes, a file whose tensors
reference external data is refused (ORT would read those files from the current directory)
and so is a metadata entry over MAX_MANIFEST_BYTES; before the manifest is parsed, a
vocabulary, label list or state over its limit is refused. Each is one ModelError line.
Nothing in a model file is executed: the manifest is JSON read by ``json``, and its
strings select entries of fixed tables.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnedge.contract import MANIFEST_KEY, Manifest, check_declared_tensors
from rnnedge.errors import DependencyError, DeviceError, InputError, ModelError
from rnnedge.runtime.cuda import CUDA, CudaStatus, cuda_status
from rnnedge.runtime.protoscan import MalformedModel, scan_model

DEVICES = ("auto", "cpu", "cuda")
CPU = "CPUExecutionProvider"
# TF32 off: an fp32 file on CUDA computes in fp32 like it does on the CPU (ORT's default
# rounds matrix inputs to 10-bit mantissas on Ampere and later); the fp16 file is the fast one.
CUDA_PROVIDER = (CUDA, {"use_tf32": "0"})
# One intra-op thread is the measured default for small recurrent models: a step is a few
# small matrix-vector products, and a second thread costs more in hand-off than it saves.
DEFAULT_THREADS = 1
# Batched work (many streams, many inputs) has enough rows per step to split: a second
# core gave 1.5-1.8x on 2 cores (benchmarks/REPORT.md). Not measured beyond 2 cores; capped
# because a step of a few dozen rows leaves too little work per thread to split further.
MAX_BATCH_THREADS = 4
# Limits for untrusted files, far above any real model (the shipped manifests are 4-45 kB;
# a 1,000,000-entry word vocabulary is ~10 MB of JSON) and low enough that a crafted file
# cannot make the runtime parse or allocate gigabytes before it is refused.
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_VOCABULARY = 1_000_000
MAX_LABELS = 100_000
MAX_STATE_ELEMENTS = 2**26  # per batch row, over all state tensors: 256 MB of float32


def intra_op_threads(threads: int | None) -> int:
    """The onnxruntime intra-op thread count: `threads`, else $RNNEDGE_THREADS, else
    DEFAULT_THREADS. Zero or less is refused (onnxruntime would read 0 as 'all cores')."""
    if threads is None:
        setting = os.environ.get("RNNEDGE_THREADS", str(DEFAULT_THREADS))
        try:
            threads = int(setting)
        except ValueError:
            raise InputError(f"$RNNEDGE_THREADS must be a whole number, got {setting!r}") from None
        if threads < 1:
            raise InputError(f"$RNNEDGE_THREADS must be at least 1, got {threads}")
    if threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")
    return threads


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


def choose_providers(
    device: str, probe: Callable[[], CudaStatus] | None = None
) -> tuple[list[Any], str | None]:
    """Providers for `device`, and a note for the user (None: nothing to say).

    `probe` (default: cuda_status) says whether CUDA really runs here; `cpu` never calls
    it. `cuda` that cannot run is an error naming why; `auto` takes CUDA only where a
    CUDA session really runs, and says which provider it chose whenever this onnxruntime
    has CUDA (a CPU build has nothing to fall back from, so it says nothing).
    """
    if device not in DEVICES:
        raise DeviceError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cpu":
        return [CPU], None
    cuda = (probe or cuda_status)()
    if cuda.usable:
        return [CUDA_PROVIDER, CPU], (
            "--device auto: running on CUDA" if device == "auto" else None
        )
    if device == "cuda":
        raise DeviceError(f"--device cuda cannot run here: {cuda.reason}; or use --device cpu")
    note = f"--device auto: running on the CPU: CUDA cannot run ({cuda.reason})"
    return [CPU], note if cuda.listed else None


@dataclass
class LoadedSession:
    """An ORT session with the model's manifest and the provider that actually runs it."""

    session: Any
    manifest: Manifest
    provider: str
    path: str
    device_note: str | None = None  # what --device auto chose, for the CLI to show


def open_session(
    source: str | Path | bytes, device: str = "auto", threads: int | None = None
) -> LoadedSession:
    """Open an rnnedge model (a path, or the model's bytes).

    ModelError if it is not an rnnedge model; DeviceError if `device` cannot run.
    """
    ort = import_onnxruntime()
    data = source if isinstance(source, bytes) else read_model_bytes(source)
    path = "<in-memory model>" if isinstance(source, bytes) else str(source)
    check_model_bytes(data, path)
    options = ort.SessionOptions()
    # EXTENDED, not ALL: level ALL only adds layout transforms for convolutions (no
    # measured change for our graphs) and crashes the CPU provider on fp16 graphs
    # (onnxruntime#15494), which --fp16 exports are.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.intra_op_num_threads = intra_op_threads(threads)
    options.inter_op_num_threads = 1
    # Spinning threads steal the core from the Python loop (and from torch when both share
    # a process) between the short calls of a streaming step.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session, note = create_session(ort, data, options, device, path)
    metadata = session.get_modelmeta().custom_metadata_map
    if MANIFEST_KEY not in metadata:
        raise ModelError(
            f"{path!r} is an ONNX model but not an rnnedge model (no "
            f"{MANIFEST_KEY!r} metadata); export it with `rnnedge export`"
        )
    check_manifest_limits(metadata[MANIFEST_KEY], path)
    try:
        manifest = Manifest.from_json(metadata[MANIFEST_KEY])
    except ModelError as exc:  # the contract's reasons do not know the file: name it
        raise ModelError(f"{path!r}: {exc}") from None
    check_graph_matches(session, manifest, path)
    return LoadedSession(session, manifest, session.get_providers()[0], path, note)


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""


def create_session(
    ort: Any, data: bytes, options: Any, device: str, path: str
) -> tuple[Any, str | None]:
    """The ORT session on `device`'s providers, and the note for the user. A file that
    opens nowhere is a ModelError. One that does not get CUDA although CUDA runs here (it
    fails to open there, or onnxruntime puts it on the CPU) is an error for `cuda` and, for
    `auto`, a CPU session with a note saying why."""
    providers, note = choose_providers(device)
    try:
        session = ort.InferenceSession(data, sess_options=options, providers=providers)
    except Exception as exc:  # ORT raises its own exception types for unparsable files
        if providers[0] != CUDA_PROVIDER:
            raise ModelError(f"{path!r} is not a loadable ONNX model ({first_line(exc)})") from None
        session = cpu_session(ort, data, options, path)  # a ModelError if it fails there too
        problem = f"it could not be opened on CUDA ({first_line(exc)})"
    else:
        provider = session.get_providers()[0]
        if providers[0] != CUDA_PROVIDER or provider == CUDA:
            return session, note
        problem = f"onnxruntime put it on {provider}"
    if device == "cuda":
        raise DeviceError(f"--device cuda: {path!r}: {problem}; use --device cpu")
    return session, f"--device auto: running on the CPU: {problem}"


def cpu_session(ort: Any, data: bytes, options: Any, path: str) -> Any:
    try:
        return ort.InferenceSession(data, sess_options=options, providers=[CPU])
    except Exception as exc:  # ORT raises its own exception types for unparsable files
        raise ModelError(f"{path!r} is not a loadable ONNX model ({first_line(exc)})") from None


def check_model_bytes(data: bytes, path: str) -> None:
    """Refuse, before onnxruntime parses the file, what a model must not ask for: external
    data files, and metadata entries over MAX_MANIFEST_BYTES."""
    try:
        scan = scan_model(data)
    except MalformedModel as exc:
        raise ModelError(f"{path!r} is not a loadable ONNX model ({exc})") from None
    if scan.external_tensors:
        names = ", ".join(scan.external_tensors[:3])
        more = (
            f" and {len(scan.external_tensors) - 3} more" if len(scan.external_tensors) > 3 else ""
        )
        raise ModelError(
            f"{path!r} references external data files (tensor {names}{more}); rnnedge "
            "loads single-file models only: re-export without external data"
        )
    for key, size in scan.metadata_sizes.items():
        if size > MAX_MANIFEST_BYTES:
            raise ModelError(
                f"{path!r}: metadata {key!r} is {size:,} bytes, over the limit of "
                f"{MAX_MANIFEST_BYTES:,} bytes ({MAX_MANIFEST_BYTES // 2**20} MiB)"
            )


def manifest_counts(data: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(what, count, limit) for each size a manifest declares that the runtime allocates or
    walks: vocabulary entries, labels, state elements per batch row. Fields of the wrong
    type count as 0 here; Manifest.from_json reports them."""
    tokenizer = data.get("tokenizer")
    vocab = tokenizer.get("vocab") if isinstance(tokenizer, dict) else None
    labels = data.get("labels")
    states = data.get("states") if isinstance(data.get("states"), list) else []
    shapes = [s.get("shape") for s in states if isinstance(s, dict)]
    elements = sum(
        math.prod(d for d in shape if isinstance(d, int) and d > 0)
        for shape in shapes
        if isinstance(shape, list)
    )
    return [
        ("vocabulary entries", len(vocab) if isinstance(vocab, list | dict) else 0, MAX_VOCABULARY),
        ("labels", len(labels) if isinstance(labels, list) else 0, MAX_LABELS),
        ("state elements per batch row", elements, MAX_STATE_ELEMENTS),
    ]


def check_manifest_limits(text: str, path: str) -> None:
    """Refuse a manifest that is not readable JSON for reasons the JSON decoder does not name
    (nesting, huge integers) or that declares sizes over the runtime's limits."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return  # Manifest.from_json names the problem
    except (ValueError, RecursionError) as exc:  # e.g. a 5,000-digit integer, deep nesting
        reason = str(exc).split(":")[0][:120]
        raise ModelError(f"{path!r}: model manifest is not readable JSON ({reason})") from None
    if not isinstance(data, dict):
        return
    for what, count, limit in manifest_counts(data):
        if count > limit:
            raise ModelError(
                f"{path!r}: manifest declares {count:,} {what}, over the limit of {limit:,}"
            )


ORT_DTYPES = {"tensor(float)": "float32", "tensor(int64)": "int64", "tensor(float16)": "float16"}


def check_graph_matches(session: Any, manifest: Manifest, path: str) -> None:
    """The manifest's tensors must be the graph's, with exactly the declared dtype and
    shape: a mismatched file is refused at load, not discovered mid-stream."""
    declared = {
        arg.name: (
            ORT_DTYPES.get(arg.type, arg.type),
            [d if isinstance(d, (int, str)) else "?" for d in arg.shape],
        )
        for arg in [*session.get_inputs(), *session.get_outputs()]
    }
    check_declared_tensors(manifest, declared, repr(path))


def available_providers() -> list[str]:
    return list(import_onnxruntime().get_available_providers())
