"""Runtime measurements (no torch): step latency, batched streams, prefill, cold start,
and classification throughput.

Medians and 90th percentiles over repeated calls after a warm-up; the state is carried
between steps exactly as in generation. `benchmarks/run.py` builds the project report on
these, adding torch eager and the hardware floors.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnnedge.runtime.classify import Classifier
from rnnedge.runtime.generate import Generator
from rnnedge.runtime.graph import BoundSteps
from rnnedge.runtime.sampling import SamplingConfig
from rnnedge.runtime.streams import StreamBatch

STREAM_BATCHES = (1, 8, 64, 256)
END_TO_END_BATCHES = (1, 64)
SPAWN_PROBE = """
import json, os, sys, time
command = json.loads(sys.argv[1])
quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]
began = time.perf_counter()
pid = os.posix_spawn(command[0], command, os.environ, file_actions=quiet)
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"wall_s": time.perf_counter() - began, "max_rss_kib": usage.ru_maxrss,
                  "exit_code": os.waitstatus_to_exitcode(status)}))
"""


def timed(fn: Callable[[], Any], repeats: int, warmup: int = 10) -> np.ndarray:
    """Wall seconds of `repeats` calls of `fn` after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = np.empty(repeats)
    for i in range(repeats):
        began = time.perf_counter()
        fn()
        samples[i] = time.perf_counter() - began
    return samples


def summary(samples: np.ndarray) -> dict[str, float]:
    return {
        "median": float(np.median(samples)),
        "p90": float(np.percentile(samples, 90)),
        "runs": int(samples.size),
    }


def step_seconds(
    run: Callable, initial_state: Any, batch: int, vocab: int, repeats: int
) -> np.ndarray:
    """Seconds per streaming step of `batch` streams; `run(tokens, state) -> (logits, state)`."""
    tokens = np.random.default_rng(0).integers(0, vocab, size=(batch, 1), dtype=np.int64)
    state = [initial_state]

    def one_step() -> None:
        _, state[0] = run(tokens, state[0])

    return timed(one_step, repeats)


def bound_step_seconds(generator: Generator, repeats: int) -> np.ndarray:
    """Seconds per batch-1 step through the IO-bound path `generate` steps with
    (BoundSteps: state in device buffers used in turn, logits to the host)."""
    steps = BoundSteps(generator, generator.initial_state(1), generator.vocab_size)
    return timed(lambda: steps.step(1), repeats)


def bench_generator(
    generator: Generator,
    batches: tuple[int, ...] = STREAM_BATCHES,
    steps: int = 200,
    prefill_length: int = 512,
) -> dict[str, Any]:
    """Step latency at batch 1 (the bound path `generate` uses, and a plain `run` call),
    total tokens/s of B streams, one-call prefill tokens/s."""
    vocab = generator.vocab_size
    streams = {}
    for batch in batches:
        repeats = max(20, steps // max(1, batch // 8))
        seconds = step_seconds(generator.run, generator.initial_state(batch), batch, vocab, repeats)
        streams[batch] = {**summary(seconds), "tokens_per_s": batch / float(np.median(seconds))}
    prompt = np.random.default_rng(1).integers(0, vocab, size=(1, prefill_length), dtype=np.int64)
    prefill = timed(lambda: generator.run(prompt, generator.initial_state(1)), repeats=10, warmup=2)
    return {
        "step_batch1": summary(bound_step_seconds(generator, steps * 2)),
        "step_batch1_run": summary(
            step_seconds(generator.run, generator.initial_state(1), 1, vocab, steps * 2)
        ),
        "streams": streams,
        "end_to_end": {
            batch: generation_rate(generator, batch, tokens=max(50, steps))
            for batch in END_TO_END_BATCHES
        },
        "prefill": {
            **summary(prefill),
            "length": prefill_length,
            "tokens_per_s": prefill_length / float(np.median(prefill)),
        },
    }


def generation_rate(generator: Generator, batch: int, tokens: int) -> dict[str, float]:
    """Tokens/s of generating `batch` streams (one: `generate`; more: a StreamBatch),
    sampling, stop matching and decoding included: what a user waits for, beyond the raw
    step. Median of 3 runs after one warm-up."""
    sampling = SamplingConfig(temperature=0.8, top_k=40)
    prompt = "".join(generator.tokenizer.vocab[:3])  # any model's own characters

    def generate_all() -> None:
        if batch == 1:
            for _ in generator.generate(prompt, tokens, sampling, 0):
                pass
            return
        streams = StreamBatch(generator)
        for seed in range(batch):
            streams.add(prompt, tokens, sampling, seed)
        for _ in streams.run():
            pass

    seconds = timed(generate_all, repeats=3, warmup=1)
    return {**summary(seconds), "tokens_per_s": batch * tokens / float(np.median(seconds))}


CLASSIFY_BATCHES = (1, 64)


def classifier_inputs(classifier: Classifier, count: int, steps: int = 60) -> list[Any]:
    """`count` random inputs of `steps` steps in the model's own input kind (seeded)."""
    return classifier.inputs.random_inputs(count, steps, np.random.default_rng(0))


def bench_classifier(
    classifier: Classifier, batches: tuple[int, ...] = CLASSIFY_BATCHES, repeats: int = 30
) -> dict[str, Any]:
    """Sequences/s of `classify` on batches of each size (medians after a warm-up)."""
    figures: dict[str, Any] = {}
    for batch in batches:
        items = classifier_inputs(classifier, batch)
        seconds = timed(lambda items=items: classifier.classify(items), repeats, warmup=3)
        figures[batch] = {
            **summary(seconds),
            "sequences_per_s": batch / float(np.median(seconds)),
        }
    return figures


def cold_start(model: str | Path | None, runs: int = 5) -> dict[str, Any]:
    """Wall time and peak RSS of fresh `rnnedge infer generate --max-new-tokens 1` processes."""
    command = [
        sys.executable,
        "-m",
        "rnnedge",
        "infer",
        "generate",
        "--prompt",
        "And",
        "--max-new-tokens",
        "1",
        "--seed",
        "0",
    ] + ([str(model)] if model else [])
    walls, peaks = [], []
    for _ in range(runs):
        # A small intermediate process spawns and reaps the CLI: Linux carries a process's
        # peak RSS across exec, so a child forked from this (large) process would report
        # our own pages as its peak.
        probe = subprocess.run(
            [sys.executable, "-c", SPAWN_PROBE, json.dumps(command)],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(probe.stdout)
        if figures["exit_code"] != 0:
            raise RuntimeError(f"cold-start run failed: {' '.join(command)}")
        walls.append(figures["wall_s"])
        peaks.append(figures["max_rss_kib"] / 1024.0)
    return {
        "median_s": float(np.median(walls)),
        "runs": runs,
        "walls_s": walls,
        "peak_rss_mb": float(np.median(peaks)),
    }


def bench_model(
    runtime: Generator | Classifier, model: str | Path | None, steps: int = 200, cold: bool = True
) -> dict[str, Any]:
    """What `rnnedge bench` reports for any model: classifiers' sequences/s; language models'
    step latency, streams, generation and (with `cold`) fresh-process start-up."""
    if runtime.task == "classification":
        report: dict[str, Any] = {"classify": bench_classifier(runtime)}
    else:
        report = bench_generator(runtime, steps=steps)
        report["cold_start"] = cold_start(model) if cold else None
    report["provider"] = runtime.provider
    return report


def cpu_name() -> str:
    """The processor's model name (Linux /proc/cpuinfo), else what `platform` knows."""
    import platform

    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return next(names, platform.processor())
