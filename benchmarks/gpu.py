"""CUDA vs CPU in one run: many streams, classification at large batch, state kept on the
device, and the fp16 export validated on CUDA.

    python benchmarks/gpu.py prepare --out .gpu/models [--checkpoint best.pt --heldout kjv.txt]
    python benchmarks/gpu.py run --models .gpu/models [--out DIR] [--quick]

`prepare` (needs torch) writes the shipped architecture (2 × 512 LSTM, embedding 64, the
shipped model's 63 characters) as lm.fp32.onnx and lm.fp16.onnx: from --checkpoint, or
with random seeded weights (speed does not depend on what the weights learned; the fp16
agreement on random weights is weaker evidence than on trained ones, and the report says
which it is). `run` needs no torch: only onnxruntime (onnxruntime-gpu for the CUDA rows)
and this checkout. It measures, CPU and CUDA in the same process:

- total tokens/s of B = 1, 64, 1024, 4096 streams stepping together, fp32 and fp16: the
  plain `run()` call (state through numpy, what an app calling the session pays) and the
  IO-bound step (state in device buffers used in turn, tokens in and logits out: what
  sampling needs), with the bound step checked against `run()`;
- sequences/s of the shipped classifiers at large batches;
- that the state stays on the device between steps, from onnxruntime's own profile: which
  provider ran each node, and every Memcpy node and the shapes it carried;
- fp16 on CUDA against fp32 on the CPU: bits/char on held-out text, argmax agreement,
  greedy agreement (`measured_on` names the provider that ran fp16);
- the GPU, driver, CUDA runtime and cuDNN versions, and the onnxruntime build.

Where CUDA cannot run, every CUDA figure is "not available: <why>" and the CPU figures are
still measured. Writes gpu-report.json and GPU.md into --out (default: benchmarks/).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # rnnedge from this checkout when it is not installed

from rnnedge.contract import LOGITS  # noqa: E402
from rnnedge.runtime.classify import Classifier  # noqa: E402
from rnnedge.runtime.cuda import CUDA, cuda_status  # noqa: E402
from rnnedge.runtime.generate import Generator  # noqa: E402
from rnnedge.runtime.session import (  # noqa: E402
    CPU,
    CUDA_PROVIDER,
    LoadedSession,
    import_onnxruntime,
    open_session,
)

BATCHES = (1, 64, 1024, 4096)
CLASSIFY_BATCHES = (256, 4096)
CLASSIFIERS = ("fortune-langid.onnx", "fashion-mnist-rows.onnx")
HELDOUT = ROOT / "tests" / "data" / "kjv-revelation-22.txt"
TARGET_TOKENS_PER_S = 5e6  # the goal: 4096 fp16 streams on an H100
SHAPE = dict(vocab_size=63, cell="lstm", layers=2, hidden=512, embed_dim=64)


# --------------------------------------------------------------------------------------
# prepare (torch)
# --------------------------------------------------------------------------------------


def prepare(out: Path, checkpoint: Path | None, heldout: Path | None) -> dict[str, Any]:
    """Write lm.fp32.onnx and lm.fp16.onnx (and what they are, in prepared.json)."""
    from rnnedge.atomic import write_bytes_atomic
    from rnnedge.exporter import export_checkpoint, export_payload

    out.mkdir(parents=True, exist_ok=True)
    files = {"fp32": out / "lm.fp32.onnx", "fp16": out / "lm.fp16.onnx"}
    if checkpoint:
        for kind, path in files.items():
            quantize = None if kind == "fp32" else "fp16"
            export_checkpoint(checkpoint, path, quantize, heldout, run_validation=False)
        weights = f"checkpoint {checkpoint.name}"
    else:
        payload = random_payload()
        for kind, path in files.items():
            quantize = None if kind == "fp32" else "fp16"
            data = export_payload(payload, quantize, None, run_validation=False)[0]
            write_bytes_atomic(path, data)
        weights = "random (seeded), the shipped architecture"
    about = {"weights": weights, "files": {k: p.name for k, p in files.items()}}
    (out / "prepared.json").write_text(json.dumps(about, indent=2) + "\n")
    return about


def random_payload() -> dict[str, Any]:
    """A checkpoint payload of the shipped architecture with seeded random weights and the
    shipped model's characters (so held-out KJV text encodes)."""
    import torch

    from rnnedge.nets.language_model import LanguageModel, LMConfig
    from rnnedge.tokenizer import CharTokenizer

    torch.manual_seed(0)
    model = LanguageModel(LMConfig(**SHAPE)).eval()
    shipped = json.loads((ROOT / "models" / "kjv-char-lstm.manifest.json").read_text())
    tokenizer = CharTokenizer(shipped["tokenizer"]["vocab"])
    return {
        "task": "language-model",
        "model_config": model.config.to_dict(),
        "tokenizer": tokenizer.to_dict(),
        "model": model.state_dict(),
    }


# --------------------------------------------------------------------------------------
# timing and the bound batched step
# --------------------------------------------------------------------------------------


def per_step(step: Callable[[], Any], budget_s: float, min_steps: int = 3) -> dict[str, float]:
    """Median/p90 seconds of `step` over at least `min_steps` calls and about `budget_s`
    seconds, after two warm-up calls."""
    step(), step()
    samples: list[float] = []
    began = time.perf_counter()
    while len(samples) < min_steps or time.perf_counter() - began < budget_s:
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
        if len(samples) >= 2000:
            break
    return {
        "median_s": float(np.median(samples)),
        "p90_s": float(np.percentile(samples, 90)),
        "steps": len(samples),
    }


class BatchSteps:
    """B streams stepped together through IO binding: the state lives in two sets of
    buffers on the model's device used in turn (one call writes where the next reads);
    only the tokens [B, 1] go in from the host and the logits [B, 1, V] come back to it."""

    def __init__(self, generator: Generator, batch: int) -> None:
        ort = import_onnxruntime()
        device = "cuda" if generator.provider == CUDA else "cpu"
        self.session = generator.loaded.session
        self.tokens = np.zeros((batch, 1), dtype=np.int64)  # bound by reference
        state = generator.initial_state(batch)
        self.sets = [
            {k: ort.OrtValue.ortvalue_from_numpy(v, device, 0) for k, v in state.items()},
            {
                k: ort.OrtValue.ortvalue_from_shape_and_type(list(v.shape), np.float32, device, 0)
                for k, v in state.items()
            },
        ]
        self.logits = ort.OrtValue.ortvalue_from_shape_and_type(
            [batch, 1, generator.vocab_size], np.float32
        )
        self.bindings = [
            self.bind(generator, reads, writes)
            for reads, writes in ((self.sets[0], self.sets[1]), (self.sets[1], self.sets[0]))
        ]
        self.turn = 0

    def bind(self, generator: Generator, reads: dict, writes: dict) -> Any:
        binding = self.session.io_binding()
        binding.bind_cpu_input(generator.input_name, self.tokens)
        for spec in generator.manifest.states:
            binding.bind_ortvalue_input(spec.input, reads[spec.input])
            binding.bind_ortvalue_output(spec.output, writes[spec.input])
        binding.bind_ortvalue_output(LOGITS, self.logits)
        return binding

    def step(self, tokens: np.ndarray) -> np.ndarray:
        """tokens [B, 1] → logits [B, 1, V] on the host."""
        self.tokens[...] = tokens
        self.session.run_with_iobinding(self.bindings[self.turn])
        self.turn ^= 1
        return self.logits.numpy()

    def state_buffers(self) -> list[Any]:
        return [value for values in self.sets for value in values.values()]


def bound_matches_run(generator: Generator, batch: int = 8, steps: int = 5) -> float:
    """Largest |logits| difference between the bound step and plain run() over `steps`
    steps of `batch` streams (the bound path must compute the same thing)."""
    rng = np.random.default_rng(3)
    bound, state, worst = BatchSteps(generator, batch), generator.initial_state(batch), 0.0
    for _ in range(steps):
        tokens = rng.integers(0, generator.vocab_size, (batch, 1), dtype=np.int64)
        expected, state = generator.run(tokens, state)
        worst = max(worst, float(np.abs(bound.step(tokens) - expected).max()))
    return worst


# --------------------------------------------------------------------------------------
# streams and classification
# --------------------------------------------------------------------------------------


def open_generator(path: Path, device: str, threads: int | None = None) -> Generator:
    return Generator(open_session(path, device=device, threads=threads))


def stream_rates(generator: Generator, batches: tuple[int, ...], budget_s: float) -> dict:
    """tokens/s of B streams per batch size: plain run() (state through numpy) and the
    bound step (state in buffers on the model's device: the GPU's, on CUDA)."""
    vocab, figures = generator.vocab_size, {}
    for batch in batches:
        tokens = np.random.default_rng(0).integers(0, vocab, (batch, 1), dtype=np.int64)
        state = [generator.initial_state(batch)]

        def plain(tokens: np.ndarray = tokens, state: list = state) -> None:
            _, state[0] = generator.run(tokens, state[0])

        bound = BatchSteps(generator, batch)
        row = {
            "run": per_step(plain, budget_s),
            "bound": per_step(lambda bound=bound, tokens=tokens: bound.step(tokens), budget_s),
        }
        for figures_of in row.values():
            figures_of["tokens_per_s"] = batch / figures_of["median_s"]
        figures[batch] = row
        del state[:]
    return figures


def classify_rates(path: Path, device: str, batches: tuple[int, ...], budget_s: float) -> dict:
    """sequences/s of Classifier.classify on `batches` random inputs of 60 steps (one call,
    chunked by the batch size itself)."""
    threads = None if device == "cuda" else os.cpu_count()
    classifier = Classifier(open_session(path, device=device, threads=threads))
    figures: dict[Any, Any] = {"provider": classifier.provider}
    for batch in batches:
        items = classifier.inputs.random_inputs(batch, 60, np.random.default_rng(0))
        classifier.batch_size = batch
        timing = per_step(lambda items=items: classifier.classify(items), budget_s, min_steps=2)
        figures[batch] = {**timing, "sequences_per_s": batch / timing["median_s"]}
    return figures


# --------------------------------------------------------------------------------------
# state on the device: onnxruntime's profile
# --------------------------------------------------------------------------------------


def profiled_generator(path: Path, device: str, prefix: Path) -> Generator:
    """A Generator whose session writes onnxruntime's profile (per-node events: op,
    provider, shapes), on `device` with rnnedge's provider choice."""
    ort = import_onnxruntime()
    manifest = open_session(path, device="cpu").manifest
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(prefix)
    options.log_severity_level = 3
    providers = [CUDA_PROVIDER, CPU] if device == "cuda" else [CPU]
    session = ort.InferenceSession(path.read_bytes(), sess_options=options, providers=providers)
    provider = session.get_providers()[0]
    return Generator(LoadedSession(session, manifest, provider, str(path)))


def node_events(profile: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The kernel events of a profile (cat 'Node', name ending in '_kernel_time')."""
    return [
        e
        for e in profile
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")
    ]


def copies_in_profile(profile: list[dict[str, Any]], batch: int, hidden: int) -> dict:
    """What the profile says about host↔device traffic: nodes per provider, and the Memcpy
    nodes (onnxruntime inserts one wherever a tensor crosses between providers inside the
    graph) with the shapes they carried; a float one of at least batch × hidden elements
    carries (part of) the state."""
    events = node_events(profile)
    by_provider: dict[str, int] = {}
    memcpys: dict[str, int] = {}
    state_copies = 0
    for event in events:
        args = event.get("args", {})
        provider = args.get("provider", "?")
        by_provider[provider] = by_provider.get(provider, 0) + 1
        if str(args.get("op_name", "")).startswith("Memcpy"):
            outputs = [next(iter(s.items())) for s in args.get("output_type_shape", [])]
            memcpys[f"{args['op_name']} {outputs}"] = (
                memcpys.get(f"{args['op_name']} {outputs}", 0) + 1
            )
            state_copies += any(
                dtype.startswith("float") and int(np.prod(shape)) >= batch * hidden
                for dtype, shape in outputs
            )
    return {
        "node_events": len(events),
        "nodes_by_provider": by_provider,
        "memcpy_nodes": memcpys,
        "state_sized_memcpy_events": state_copies,
    }


def state_residency(path: Path, device: str, work: Path, batch: int = 64, steps: int = 20):
    """Step `batch` streams `steps` times through BatchSteps with profiling on: where the
    state buffers live (and that onnxruntime wrote into them, not into fresh memory: their
    addresses stay put), and what the profile shows crossing between host and device."""
    generator = profiled_generator(path, device, work / f"profile-{device}")
    bound = BatchSteps(generator, batch)
    addresses = [v.data_ptr() for v in bound.state_buffers()]
    tokens = np.ones((batch, 1), dtype=np.int64)
    for _ in range(steps):
        bound.step(tokens)
    profile_path = Path(generator.loaded.session.end_profiling())
    profile = json.loads(profile_path.read_text())
    hidden = int(generator.manifest.states[0].shape[-1])
    found = {
        "provider": generator.provider,
        "batch": batch,
        "steps": steps,
        "state_buffer_devices": sorted({v.device_name() for v in bound.state_buffers()}),
        "state_buffers_kept_their_addresses": addresses
        == [v.data_ptr() for v in bound.state_buffers()],
        **copies_in_profile(profile, batch, hidden),
        "per_step_host_transfers": f"tokens in ({batch * 8} B), logits out "
        f"({batch * generator.vocab_size * 4} B), by the binding",
    }
    profile_path.unlink(missing_ok=True)
    found["state_stays_on_device"] = (
        found["state_buffer_devices"] == ["cuda"]
        and found["state_buffers_kept_their_addresses"]
        and found["state_sized_memcpy_events"] == 0
    )
    return found


# --------------------------------------------------------------------------------------
# fp16 on CUDA against fp32 on the CPU
# --------------------------------------------------------------------------------------


def teacher_forced_argmax(generator: Generator, ids: np.ndarray, chunk: int = 256) -> np.ndarray:
    """The argmax after each of `ids` [N], read as one stream in chunks, state carried."""
    state, picks = generator.initial_state(1), []
    for start in range(0, ids.size, chunk):
        logits, state = generator.run(ids[None, start : start + chunk], state)  # [1, t, V]
        picks.append(logits[0].argmax(-1))
    return np.concatenate(picks)


def greedy(generator: Generator, prompt: np.ndarray, count: int) -> list[int]:
    """`count` greedy tokens after `prompt` [T] (argmax each step, state carried)."""
    logits, state = generator.run(prompt[None, :], generator.initial_state(1))
    tokens = []
    for _ in range(count):
        token = int(logits[0, -1].argmax())
        tokens.append(token)
        logits, state = generator.run(np.array([[token]], dtype=np.int64), state)
    return tokens


def fp16_validation(
    files: dict[str, Path], text: str, device: str = "cuda", greedy_tokens: int = 300
) -> dict:
    """fp16 on `device` (and fp32 there) against fp32 on the CPU, on held-out `text`."""
    reference = open_generator(files["fp32"], "cpu")
    fp16 = open_generator(files["fp16"], device)
    fp32_there = open_generator(files["fp32"], device)
    ids = reference.tokenizer.with_policy("skip").encode(text)
    expected = teacher_forced_argmax(reference, ids)
    bpc = {
        name: g.evaluate(text)["bpc"]
        for name, g in (("fp32_cpu", reference), ("fp16", fp16), ("fp32_there", fp32_there))
    }
    prompt = ids[:32]
    want = greedy(reference, prompt, greedy_tokens)
    got = greedy(fp16, prompt, greedy_tokens)
    same_prefix = next(
        (i for i, (a, b) in enumerate(zip(want, got, strict=True)) if a != b), greedy_tokens
    )
    return {
        "measured_on": fp16.provider,
        "heldout_chars": int(ids.size),
        "bpc_fp32_cpu": bpc["fp32_cpu"],
        "bpc_fp16": bpc["fp16"],
        "bpc_change": bpc["fp16"] - bpc["fp32_cpu"],
        "bpc_fp32_same_device": bpc["fp32_there"],
        "argmax_agreement": float((teacher_forced_argmax(fp16, ids) == expected).mean()),
        "argmax_agreement_fp32_same_device": float(
            (teacher_forced_argmax(fp32_there, ids) == expected).mean()
        ),
        "greedy_tokens": greedy_tokens,
        "greedy_identical_prefix": same_prefix,
        "greedy_agreement": float(np.mean(np.array(want) == np.array(got))),
    }


# --------------------------------------------------------------------------------------
# the machine
# --------------------------------------------------------------------------------------


def library_version(soname: str, function: str) -> int | None:
    """An int a CUDA library reports about itself (cudnnGetVersion, cudaRuntimeGetVersion,
    cudaDriverGetVersion), or None where the library or function is not there."""
    try:
        library = ctypes.CDLL(soname)
        if function == "cudnnGetVersion":
            library.cudnnGetVersion.restype = ctypes.c_size_t
            return int(library.cudnnGetVersion())
        value = ctypes.c_int(0)
        if getattr(library, function)(ctypes.byref(value)) != 0:
            return None
        return value.value
    except (OSError, AttributeError):
        return None  # and 0 below: cudaDriverGetVersion's answer when there is no driver


def dotted(version: int | None, cudnn: bool = False) -> str | None:
    """13000 → '13.0'; cuDNN 91000 → '9.10.0' (its major × 10000 + minor × 100 + patch)."""
    if not version:
        return None
    if cudnn:
        return f"{version // 10000}.{version % 10000 // 100}.{version % 100}"
    return f"{version // 1000}.{version % 1000 // 10}"


def environment() -> dict[str, Any]:
    from rnnedge.doctor import imported_build, nvidia_gpus

    status = cuda_status()
    major = (status.built_for or "").split(".")[0]
    cudart = f"libcudart.so.{major}" if major else "libcudart.so"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": imported_build(),
        "cuda": status.to_dict(),
        "gpus": nvidia_gpus(),
        "cuda_runtime": dotted(library_version(cudart, "cudaRuntimeGetVersion")),
        "cuda_driver_api": dotted(library_version(cudart, "cudaDriverGetVersion")),
        "cudnn": dotted(library_version("libcudnn.so.9", "cudnnGetVersion"), cudnn=True),
    }


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


# --------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------


def on_cuda(measure: Callable[[], Any]) -> Any:
    """`measure()` where CUDA runs, else why not; a failure on the GPU is recorded, not
    raised, so one broken figure does not cost the rest of a scarce GPU run."""
    status = cuda_status()
    if not status.usable:
        return {"not_available": status.reason}
    try:
        return measure()
    except Exception as exc:  # whatever onnxruntime raises: record it with the figures
        return {"failed": f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"}


def measure_streams(files: dict[str, Path], batches: tuple[int, ...], budget_s: float) -> dict:
    cores = os.cpu_count() or 1
    rows: dict[str, Any] = {
        "cpu fp32": {
            "threads": cores,
            **stream_rates(open_generator(files["fp32"], "cpu", cores), batches, budget_s),
        }
    }
    for kind in ("fp32", "fp16"):
        rows[f"cuda {kind}"] = on_cuda(
            lambda kind=kind: stream_rates(open_generator(files[kind], "cuda"), batches, budget_s)
        )
    return rows


def measure_classifiers(batches: tuple[int, ...], budget_s: float) -> dict:
    figures = {}
    for name in CLASSIFIERS:
        path = ROOT / "models" / name
        figures[path.stem] = {
            "cpu": classify_rates(path, "cpu", batches, budget_s),
            "cuda": on_cuda(lambda path=path: classify_rates(path, "cuda", batches, budget_s)),
        }
    return figures


def run(models: Path, out: Path, batches: tuple[int, ...], quick: bool) -> dict[str, Any]:
    """Every measurement, in one process; writes gpu-report.json and GPU.md into `out`."""
    budget_s = 0.5 if quick else 3.0
    files = {"fp32": models / "lm.fp32.onnx", "fp16": models / "lm.fp16.onnx"}
    prepared = models / "prepared.json"
    report: dict[str, Any] = {
        "environment": environment(),
        "weights": json.loads(prepared.read_text())["weights"] if prepared.exists() else "?",
        "architecture": architecture(files["fp32"]),
        "budget_s_per_figure": budget_s,
    }
    out.mkdir(parents=True, exist_ok=True)
    print("streams …", file=sys.stderr)
    report["streams"] = measure_streams(files, batches, budget_s)
    report["bound_vs_run_max_abs"] = {
        kind: on_cuda(lambda kind=kind: bound_matches_run(open_generator(files[kind], "cuda")))
        for kind in ("fp32", "fp16")
    }
    print("classifiers …", file=sys.stderr)
    report["classify"] = measure_classifiers(
        CLASSIFY_BATCHES[:1] if quick else CLASSIFY_BATCHES, budget_s
    )
    print("state residency (profile) …", file=sys.stderr)
    report["state_residency"] = {
        kind: on_cuda(lambda kind=kind: state_residency(files[kind], "cuda", out))
        for kind in ("fp32", "fp16")
    }
    print("fp16 validation …", file=sys.stderr)
    report["fp16_validation"] = on_cuda(lambda: fp16_validation(files, HELDOUT.read_text()))
    (out / "gpu-report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "GPU.md").write_text(markdown(report))
    return report


# --------------------------------------------------------------------------------------
# the report section
# --------------------------------------------------------------------------------------


def rate(cell: Any, batch: int, path: str) -> str:
    """A tokens/s cell: the figure, or why there is none."""
    if not isinstance(cell, dict) or "not_available" in cell or "failed" in cell:
        return "–"
    figures = cell.get(batch, cell.get(str(batch), {})).get(path)
    return f"{figures['tokens_per_s']:,.0f}" if figures else "–"


def architecture(path: Path) -> str:
    """'2 × 512 LSTM, embedding 64, 63 tokens', from the file's manifest."""
    shape = open_session(path, device="cpu").manifest.architecture
    return (
        f"{shape.get('layers')} × {shape.get('hidden')} {str(shape.get('cell')).upper()}, "
        f"embedding {shape.get('embed_dim')}, {shape.get('vocab_size')} tokens"
    )


def machine_lines(env: dict[str, Any], weights: str, model: str) -> list[str]:
    gpus = env["gpus"]["gpus"]
    gpu = "; ".join(f"{g['name']} (driver {g['driver']}, {g['memory']})" for g in gpus)
    build = env["onnxruntime"]
    return [
        f"- GPU: {gpu or 'none (' + env['gpus']['reason'] + ')'}",
        f"- CUDA runtime {env['cuda_runtime'] or '–'}, driver API {env['cuda_driver_api'] or '–'}, "
        f"cuDNN {env['cudnn'] or '–'}; {build['distribution']} {build['version']} "
        f"(built for CUDA {build['built_for_cuda'] or '–'})",
        f"- CPU: {env['cpu']}, {env['cores']} cores; Python {env['python']}; {env['date']}",
        f"- CUDA: {'runs' if env['cuda']['usable'] else 'not available: ' + env['cuda']['reason']}",
        f"- Language model: {model}; weights: {weights}",
        f"- CPU rows: onnxruntime on {env['cores']} threads",
    ]


def stream_table(report: dict[str, Any]) -> list[str]:
    streams = report["streams"]
    columns = [
        ("cpu fp32", "run"),
        ("cpu fp32", "bound"),
        ("cuda fp32", "run"),
        ("cuda fp32", "bound"),
        ("cuda fp16", "run"),
        ("cuda fp16", "bound"),
    ]
    lines = [
        "| streams | "
        + " | ".join(f"{n} {p}()" if p == "run" else f"{n} bound" for n, p in columns)
        + " |",
        "|---:|" + "---:|" * len(columns),
    ]
    batches = [k for k in streams["cpu fp32"] if k != "threads"]
    for batch in batches:
        cells = [rate(streams[name], batch, path) for name, path in columns]
        lines.append(f"| {batch} | " + " | ".join(cells) + " |")
    return lines


def goal_line(report: dict[str, Any]) -> str:
    cell = report["streams"]["cuda fp16"]
    if cell_text(cell):
        return f"- Goal (≥ 5,000,000 tokens/s, 4096 fp16 streams): {cell_text(cell)}"
    figures = cell.get(4096, cell.get("4096", {})).get("bound")
    if not figures:
        return "- Goal (≥ 5,000,000 tokens/s, 4096 fp16 streams): 4096 streams not measured"
    met = "met" if figures["tokens_per_s"] >= TARGET_TOKENS_PER_S else "NOT met"
    return (
        f"- Goal (≥ 5,000,000 tokens/s, 4096 fp16 streams, bound step): {met}: "
        f"{figures['tokens_per_s']:,.0f} tokens/s ({figures['median_s'] * 1e3:.2f} ms a step)"
    )


def cell_text(cell: Any) -> str | None:
    """Why a CUDA cell holds no figures ('not available' is said once, above), or None."""
    if isinstance(cell, dict) and "not_available" in cell:
        return "not available (CUDA: see above)"
    if isinstance(cell, dict) and "failed" in cell:
        return f"FAILED: {cell['failed']}"
    return None


def other_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for name, devices in report["classify"].items():
        for device, cell in devices.items():
            if cell_text(cell):
                lines.append(f"- classify {name} on {device}: {cell_text(cell)}")
                continue
            rates = ", ".join(
                f"batch {b}: {f['sequences_per_s']:,.0f} seq/s"
                for b, f in cell.items()
                if b != "provider"
            )
            lines.append(f"- classify {name} on {cell['provider']}: {rates}")
    sections = (
        ("state on the device, fp32", report["state_residency"]["fp32"]),
        ("state on the device, fp16", report["state_residency"]["fp16"]),
        ("bound step vs run(), max |Δlogits|, fp32", report["bound_vs_run_max_abs"]["fp32"]),
        ("bound step vs run(), max |Δlogits|, fp16", report["bound_vs_run_max_abs"]["fp16"]),
        ("fp16 validation", report["fp16_validation"]),
    )
    for title, cell in sections:
        lines.append(f"- {title}: {cell_text(cell) or json.dumps(cell)}")
    return lines


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "## CUDA vs CPU (benchmarks/gpu.py)",
        "",
        *machine_lines(report["environment"], report["weights"], report["architecture"]),
        "",
        "Total tokens/s of B streams stepping together (median step; `run()`: state through "
        "numpy; bound: state in device buffers, tokens in and logits out).",
        "",
        *stream_table(report),
        "",
        goal_line(report),
        *other_lines(report),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="export lm.fp32/fp16.onnx (needs torch)")
    prep.add_argument("--out", type=Path, required=True)
    prep.add_argument("--checkpoint", type=Path, help="a language-model checkpoint (.pt)")
    prep.add_argument("--heldout", type=Path, help="its training text (fp16 quality on CPU)")
    go = commands.add_parser("run", help="measure CPU and CUDA (no torch)")
    go.add_argument("--models", type=Path, required=True, help="the folder `prepare` wrote")
    go.add_argument("--out", type=Path, default=HERE)
    go.add_argument("--batches", default=",".join(map(str, BATCHES)))
    go.add_argument("--quick", action="store_true", help="short timings (a smoke test)")
    args = parser.parse_args()
    if args.command == "prepare":
        print(json.dumps(prepare(args.out, args.checkpoint, args.heldout), indent=2))
        return
    batches = tuple(int(b) for b in args.batches.split(","))
    report = run(args.models, args.out, batches, args.quick)
    print(markdown(report))


if __name__ == "__main__":
    main()
