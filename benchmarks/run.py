"""The project's benchmark report: torch eager vs onnxruntime fp32 vs int8 (CPU), and
torch eager vs onnxruntime fp32 vs fp16 on CUDA when onnxruntime has it, in one run.

    python benchmarks/run.py [--quick]

Writes benchmarks/REPORT.md, benchmarks/report.json and benchmarks/streams.png. Every
comparison within a configuration uses the same weights (random, seeded: speed does not
depend on what the weights learned). Hardware floors are measured in the same run:
weight bytes ÷ the read bandwidth of a buffer that size (batch 1), and FLOPs ÷ the
measured peak of a large fp32 matrix product (large batches).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch

import rnnedge
from rnnedge.bench import (
    STREAM_BATCHES,
    bench_classifier,
    bench_generator,
    bound_step_seconds,
    classifier_inputs,
    cold_start,
    cpu_name,
    step_seconds,
    summary,
    timed,
)
from rnnedge.exporter import export_payload
from rnnedge.nets.language_model import LanguageModel, LMConfig
from rnnedge.runtime import default_model_path, load
from rnnedge.runtime.cuda import cuda_status
from rnnedge.runtime.generate import Generator
from rnnedge.runtime.session import open_session
from rnnedge.tokenizer import CharTokenizer

HERE = Path(__file__).resolve().parent
CONFIGS = {  # name: (LMConfig kwargs, what it is)
    "kjv-2x512": (
        dict(vocab_size=63, cell="lstm", layers=2, hidden=512, embed_dim=64),
        "the shipped model's architecture (2 × 512 LSTM, embedding 64, 63 chars)",
    ),
    "seed-3x512": (
        dict(vocab_size=65, cell="lstm", layers=3, hidden=512, embed_dim=0),
        "reference 000's char generator (3 × 512 LSTM, one-hot, 65 chars)",
    ),
}


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": str(torch.__version__),
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "rnnedge": rnnedge.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def read_bandwidth(size_bytes: int) -> float:
    """Bytes/s of reading a float32 buffer of `size_bytes` (best of dot and sum; warm)."""
    buffer = np.random.default_rng(0).random(max(size_bytes // 4, 1024), dtype=np.float32)
    half = buffer.size // 2
    a, b = buffer[:half], buffer[half : 2 * half]
    dot = np.median(timed(lambda: np.dot(a, b), repeats=50, warmup=5))
    total = np.median(timed(buffer.sum, repeats=50, warmup=5))
    return buffer.nbytes / min(dot, total)


def matmul_peak(threads: int) -> float:
    """FLOP/s of a 2048³ fp32 matrix product on `threads` threads (torch's BLAS)."""
    torch.set_num_threads(threads)
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    return 2 * 2048**3 / float(np.median(timed(lambda: a @ b, repeats=5, warmup=1)))


def random_payload(kwargs: dict[str, Any]) -> tuple[LanguageModel, dict[str, Any]]:
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(**kwargs)).eval()
    tokenizer = CharTokenizer([chr(33 + i) for i in range(kwargs["vocab_size"])])
    payload = {
        "task": "language-model",
        "model_config": model.config.to_dict(),
        "tokenizer": tokenizer.to_dict(),
        "model": model.state_dict(),
    }
    return model, payload


def torch_runner(model: LanguageModel, device: str = "cpu"):
    """run(tokens, state) with torch eager, matching Generator.run's signature: tokens come
    from the host and logits go back to it (as they do for onnxruntime); the state stays on
    the model's device."""

    def run(tokens: np.ndarray, state: Any) -> tuple[Any, Any]:
        with torch.inference_mode():
            logits, state = model(torch.from_numpy(tokens).to(device), state)
            return logits.cpu(), state

    return run


def bench_torch(
    model: LanguageModel, threads: int, steps: int, device: str = "cpu"
) -> dict[str, Any]:
    torch.set_num_threads(threads)
    run, vocab = torch_runner(model, device), model.config.vocab_size
    streams = {}
    for batch in STREAM_BATCHES:
        seconds = step_seconds(run, None, batch, vocab, max(20, steps // max(1, batch // 8)))
        streams[batch] = {**summary(seconds), "tokens_per_s": batch / float(np.median(seconds))}
    prompt = torch.zeros((1, 512), dtype=torch.int64)
    prefill = timed(lambda: run(prompt.numpy(), None), repeats=10, warmup=2)
    return {
        "step_batch1": summary(step_seconds(run, None, 1, vocab, steps)),
        "streams": streams,
        "prefill": {
            **summary(prefill),
            "length": 512,
            "tokens_per_s": 512 / float(np.median(prefill)),
        },
    }


def weight_bytes(model_bytes: bytes) -> int:
    graph = onnx.load_from_string(model_bytes).graph
    return sum(onnx.numpy_helper.to_array(t).nbytes for t in graph.initializer)


def step_flops(model: LanguageModel) -> int:
    """FLOPs of one token: 2 × the recurrent and head matrices (embedding is a lookup)."""
    matrices = [
        p for name, p in model.named_parameters() if p.dim() == 2 and "embedding" not in name
    ]
    return 2 * sum(p.numel() for p in matrices)


def bench_config(name: str, kwargs: dict[str, Any], steps: int) -> dict[str, Any]:
    model, payload = random_payload(kwargs)
    logging.disable(logging.WARNING)  # quantize_dynamic's advice to pre-process
    files = {
        kind: export_payload(payload, quantize, run_validation=False)[0]
        for kind, quantize in (("fp32", None), ("int8", "int8"), ("fp16", "fp16"))
    }
    result: dict[str, Any] = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "step_flops": step_flops(model),
        "variants": {},
        "sizes": {kind: len(data) for kind, data in files.items()},
    }
    torch_runs = {t: bench_torch(model, t, steps) for t in (1, 2)}
    best = min(torch_runs, key=lambda t: torch_runs[t]["step_batch1"]["median"])
    result["variants"]["torch eager"] = {**torch_runs[best], "threads": best, "size_bytes": None}
    for kind in ("fp32", "int8"):  # the CPU formats; fp16 is for CUDA (below)
        data = files[kind]
        generator = Generator(open_session(data, device="cpu", threads=1))
        result["variants"][f"onnxruntime {kind}"] = {
            **bench_generator(generator, steps=steps),
            "threads": 1,
            "size_bytes": len(data),
            "weight_bytes": weight_bytes(data),
        }
    for kind in ("fp32", "int8"):
        size = result["variants"][f"onnxruntime {kind}"]["weight_bytes"]
        result.setdefault("read_bandwidth", {})[kind] = read_bandwidth(size)
    result["interleaved"] = interleaved_rounds(model, files, steps)
    # What the runtime's "made for CUDA" note is about: fp16 on the CPU provider.
    fp16_on_cpu = Generator(open_session(files["fp16"], device="cpu", threads=1))
    result["fp16_cpu_step_batch1"] = summary(bound_step_seconds(fp16_on_cpu, steps))
    # The provider list is not enough: onnxruntime-gpu lists CUDA on machines without a GPU.
    if cuda_status().usable:
        result["cuda"] = bench_cuda(model, files, steps)
    return result


INTERLEAVED_ROUNDS = 7


def interleaved_rounds(
    model: LanguageModel, files: dict[str, bytes], steps: int, rounds: int = INTERLEAVED_ROUNDS
) -> dict[str, Any]:
    """The batch-1 step of torch eager and onnxruntime fp32/int8 at 1 and 2 threads (the
    runtime's generation path: BoundSteps), and onnxruntime's 64-stream step at 1 and 2
    threads, all timed in turn within each of `rounds` rounds.

    This shared machine's speed drifts by tens of percent within a minute, so a ratio of
    two figures taken a minute apart says little: each round's ratios compare figures taken
    seconds apart, and the report gives their median and range. torch's reference in each
    round is its better thread count in that round. The thread defaults rest on these.
    """
    repeats, vocab = max(100, steps // 2), model.config.vocab_size
    batch1: dict[str, Any] = {}
    streams64: dict[str, Any] = {}
    for threads in (1, 2):

        def torch_steps(threads: int = threads) -> np.ndarray:
            torch.set_num_threads(threads)
            return step_seconds(torch_runner(model), None, 1, vocab, repeats)

        batch1[f"torch eager ({threads} thr)"] = torch_steps
    for kind in ("fp32", "int8"):
        for threads in (1, 2):
            generator = Generator(open_session(files[kind], device="cpu", threads=threads))
            name = f"onnxruntime {kind} ({threads} thr)"
            batch1[name] = lambda generator=generator: bound_step_seconds(generator, repeats)
            streams64[name] = lambda generator=generator: step_seconds(
                generator.run, generator.initial_state(64), 64, vocab, max(20, repeats // 8)
            )
    seconds = interleave(batch1, rounds)
    seconds64 = interleave(streams64, rounds)
    torch_best = np.minimum(seconds["torch eager (1 thr)"], seconds["torch eager (2 thr)"])
    fp32 = seconds["onnxruntime fp32 (1 thr)"]
    return {
        "rounds": rounds,
        "seconds": seconds,
        "streams64_seconds": seconds64,
        "vs_torch": {name: spread(torch_best, s) for name, s in seconds.items()},
        "vs_fp32": {name: spread(fp32, s) for name, s in seconds.items()},
        "second_thread": {
            kind: {
                label: spread(
                    times[f"onnxruntime {kind} (1 thr)"], times[f"onnxruntime {kind} (2 thr)"]
                )
                for label, times in (("batch1", seconds), ("streams64", seconds64))
            }
            for kind in ("fp32", "int8")
        },
    }


def interleave(measures: dict[str, Any], rounds: int) -> dict[str, list[float]]:
    """Per name, the median of each round's samples; every round calls each measure in turn."""
    seconds: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(rounds):
        for name, measure in measures.items():
            seconds[name].append(float(np.median(measure())))
    return seconds


SWEEP_HIDDEN = (128, 256, 384, 512)


def thread_sweep(steps: int, rounds: int = 5) -> dict[str, Any]:
    """The batch-1 step at 1 and 2 threads for 2-layer LSTMs of each width in SWEEP_HIDDEN,
    fp32 and int8, interleaved: where (if anywhere) a second thread pays for one stream."""
    measures: dict[str, Any] = {}
    for hidden in SWEEP_HIDDEN:
        _, payload = random_payload(
            dict(vocab_size=63, cell="lstm", layers=2, hidden=hidden, embed_dim=64)
        )
        for kind, quantize in (("fp32", None), ("int8", "int8")):
            data = export_payload(payload, quantize, run_validation=False)[0]
            for threads in (1, 2):
                generator = Generator(open_session(data, device="cpu", threads=threads))
                measures[f"{kind}/{hidden}/{threads}"] = lambda generator=generator: (
                    bound_step_seconds(generator, max(100, steps))
                )
    seconds = interleave(measures, rounds)
    return {
        "rounds": rounds,
        "seconds": seconds,
        "second_thread": {
            f"{kind}/{hidden}": spread(seconds[f"{kind}/{hidden}/1"], seconds[f"{kind}/{hidden}/2"])
            for kind in ("fp32", "int8")
            for hidden in SWEEP_HIDDEN
        },
    }


def spread(before: Any, after: Any) -> dict[str, float]:
    """Median and range over rounds of before[i] / after[i]: how many times faster `after`
    ran than `before` within each round."""
    ratios = np.asarray(before) / np.asarray(after)
    return {
        "median": float(np.median(ratios)),
        "min": float(ratios.min()),
        "max": float(ratios.max()),
    }


def bench_cuda(model: LanguageModel, files: dict[str, bytes], steps: int) -> dict[str, Any]:
    """torch eager (when torch has CUDA), onnxruntime fp32 and fp16, all on the GPU."""
    variants: dict[str, Any] = {}
    if torch.cuda.is_available():
        on_gpu = copy.deepcopy(model).to("cuda")
        variants["torch eager"] = {**bench_torch(on_gpu, 1, steps, "cuda"), "size_bytes": None}
    for kind in ("fp32", "fp16"):
        generator = Generator(open_session(files[kind], device="cuda"))
        variants[f"onnxruntime {kind}"] = {
            **bench_generator(generator, steps=steps),
            "size_bytes": len(files[kind]),
        }
    return variants


CHUNKS = (8, 16, 32, 64, 128, 256)
CHUNK_INPUTS = 1024


def classifier_figures(path: Path) -> dict[str, Any]:
    """Sequences/s of `classify` at batch 1 and 64, and of 1,024 inputs split into chunks of
    each size in CHUNKS (how Classifier.batch_size was chosen); 1 thread."""
    classifier = load(path, device="cpu", threads=1)
    figures: dict[str, Any] = {
        "size_bytes": path.stat().st_size,
        "default_chunk": classifier.batch_size,
    }
    for batch, rates in bench_classifier(classifier).items():
        figures[f"batch{batch}"] = rates
    items = classifier_inputs(classifier, CHUNK_INPUTS)
    figures["chunks"] = {}
    for chunk in CHUNKS:
        classifier.batch_size = chunk
        seconds = timed(lambda: classifier.classify(items), repeats=5, warmup=1)
        figures["chunks"][chunk] = CHUNK_INPUTS / float(np.median(seconds))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    args = parser.parse_args()
    steps = 60 if args.quick else 400
    report: dict[str, Any] = {"machine": machine(), "configs": {}}
    peaks = {threads: matmul_peak(threads) for threads in (1, os.cpu_count() or 1)}
    report["matmul_peak_flops_by_threads"] = peaks
    report["matmul_peak_flops"] = peaks[max(peaks)]
    for name, (kwargs, about) in CONFIGS.items():
        print(f"benchmarking {name} …", file=sys.stderr)
        report["configs"][name] = {"about": about, **bench_config(name, kwargs, steps)}
    print("thread sweep …", file=sys.stderr)
    report["thread_sweep"] = thread_sweep(steps)
    shipped = default_model_path()
    report["shipped"] = {
        "path": os.path.relpath(shipped, HERE.parent),
        "size_bytes": shipped.stat().st_size,
        "cold_start": cold_start(None, runs=3 if args.quick else 9),
    }
    report["classifiers"] = {
        path.stem: classifier_figures(path)
        for path in sorted((HERE.parent / "models").glob("*.onnx"))
        if load(path, device="cpu").manifest.task == "classification"
    }
    (HERE / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    sys.path.insert(0, str(HERE))
    from report import plot_streams, write_markdown

    write_markdown(report, HERE / "REPORT.md")
    plot_streams(report, HERE / "streams.png")
    print(f"wrote {HERE / 'REPORT.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
