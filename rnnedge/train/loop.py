"""The training engine every trainer shares: optimizer, schedule, precision, evaluation,
metrics, atomic checkpoints and exact resume.

A trainer supplies a ``TrainingTask`` (model, batches, loss, evaluation, what to store);
the engine runs the steps. Everything a run needs to continue after a kill lives in
``last.pt``: weights, optimizer and schedule, step, RNG states, the batcher's position
and any carried recurrent state, so a resumed run ends with the same weights as an
unbroken one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnedge.errors import InputError
from rnnedge.train.checkpoint import load_checkpoint, save_checkpoint

# Fault injection for the resume test: SIGKILL this process right after the given step.
KILL_AT_STEP_ENV = "RNNEDGE_FAULT_KILL_AT_STEP"
State = tuple[torch.Tensor, ...]


@dataclass
class LoopConfig:
    """Options every trainer has; trainers subclass it with their model and data options."""

    out: str = "runs/run"
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    clip: float = 5.0
    schedule: str = "none"
    warmup_steps: int = 0
    steps: int = 2000
    eval_every: int = 200
    checkpoint_every: int = 200
    sample_every: int = 0
    precision: str = "fp32"  # bf16: autocast matmuls (1.6x faster on AVX512-BF16 CPUs)
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    resume: bool = False

    def check(self) -> None:
        """Refuse impossible settings before any work starts."""
        choices = {
            "optimizer": ("adam", "adamw", "sgd"),
            "schedule": ("none", "cosine"),
            "precision": ("fp32", "bf16"),
            "device": ("auto", "cpu", "cuda"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InputError(
                    f"--{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        for name in self.positive_fields():
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1")

    def positive_fields(self) -> tuple[str, ...]:
        return ("steps", "eval_every", "checkpoint_every")


class TrainReporter:
    """Receives training events; the CLI renders them, tests ignore them."""

    def start(self, total_steps: int, start_step: int, info: dict[str, Any]) -> None: ...
    def step(self, step: int, loss: float, items_per_s: float) -> None: ...
    def evaluated(self, step: int, metrics: dict[str, float], best: bool) -> None: ...
    def sample(self, step: int, text: str) -> None: ...
    def end(self, summary: dict[str, Any]) -> None: ...


class TrainingTask:
    """What differs between trainers. Subclasses set the attributes and the methods."""

    name: str  # manifest task, e.g. "language-model"
    model: nn.Module
    batcher: Any  # next_batch(), state_dict(), load_state_dict(), carries_state
    best_metric: str  # key of evaluate()'s result that picks best.pt
    higher_is_better: bool
    item_name: str = "items"  # what items/s counts in the progress bar

    def loss(
        self, batch: Any, carried: State | None, device: torch.device
    ) -> tuple[torch.Tensor, State | None, int]:
        """(loss, state to carry to the next batch or None, items in the batch)."""
        raise NotImplementedError

    def evaluate(self, device: torch.device) -> dict[str, float]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What checkpoints carry besides weights: model_config, tokenizer, data, labels…"""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """Facts for the start line of the progress display."""
        return {}

    def sample(self, step: int) -> str | None:
        return None

    def load_description(self, payload: dict[str, Any]) -> None:
        """Hook for tasks that must check a resumed run matches the current data."""


def choose_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no CUDA GPU; use --device cpu")
    return torch.device(name)


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def detach_state(state: State | None) -> State | None:
    # float(): under bf16 autocast the state comes out bf16; carry it in fp32 like eval does.
    return None if state is None else tuple(s.detach().float() for s in state)


def build_optimizer(config: LoopConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = model.parameters()
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer(params, lr=config.lr, weight_decay=config.weight_decay)


def build_schedule(
    config: LoopConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then constant (``none``) or cosine decay to 5 % of the peak."""

    def factor(step: int) -> float:
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.schedule == "cosine":
            progress = min(1.0, step / max(1, config.steps))
            return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class MetricsLog:
    """Metrics as JSON lines; on resume, lines after the resumed step are dropped."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and path.exists():
            kept = [
                line
                for line in path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= resume_step
            ]
            path.write_text("".join(line + "\n" for line in kept))
        elif path.exists():
            path.unlink()

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def previous_run(config: LoopConfig) -> dict[str, Any] | None:
    """The checkpoint to resume from, or None; refuses to overwrite a run silently."""
    last_path = Path(config.out) / "last.pt"
    if config.resume and last_path.exists():
        return load_checkpoint(last_path)
    if last_path.exists():
        raise InputError(
            f"{config.out!r} already holds a run; pass --resume to continue it "
            "or choose another --out"
        )
    return None


def prepare_runtime(config: LoopConfig) -> torch.device:
    """Threads and device, before any tensor is made."""
    config.check()
    if config.threads:
        torch.set_num_threads(config.threads)
    return choose_device(config.device)


def run(
    config: LoopConfig,
    task: TrainingTask,
    device: torch.device,
    resumed: dict[str, Any] | None,
    generator: torch.Generator,
    reporter: TrainReporter | None = None,
) -> dict[str, Any]:
    """Train `task.model` for `config.steps` steps (from the resumed step, if any)."""
    reporter = reporter or TrainReporter()
    out = Path(config.out)
    model = task.model.to(device)
    optimizer = build_optimizer(config, model)
    schedule = build_schedule(config, optimizer)
    best_key = f"best_valid_{task.best_metric}"
    sign = -1.0 if task.higher_is_better else 1.0  # compare as "lower is better"
    start_step, best, carried = 0, math.inf, None
    last_valid: dict[str, float] = {}
    elapsed_before = 0.0
    if resumed:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        schedule.load_state_dict(resumed["schedule"])
        generator.set_state(resumed["rng"]["batches"])
        torch.set_rng_state(resumed["rng"]["torch"])
        task.batcher.load_state_dict(resumed["batcher"])
        carried = tuple(s.to(device) for s in resumed["carried_state"]) or None
        start_step, best = int(resumed["step"]), sign * float(resumed[best_key])
        last_valid, elapsed_before = dict(resumed["valid"]), float(resumed["train_seconds"])
    log = MetricsLog(out / "metrics.jsonl", start_step if resumed else None)
    reporter.start(
        config.steps,
        start_step,
        {
            "device": str(device),
            "params": sum(p.numel() for p in model.parameters()),
            **task.info(),
        },
    )
    began = time.perf_counter()
    kill_at = int(os.environ.get(KILL_AT_STEP_ENV, "0"))

    def seconds() -> float:
        return elapsed_before + time.perf_counter() - began

    def payload(step: int) -> dict[str, Any]:
        return {
            **task.describe(),
            "task": task.name,
            "train_config": asdict(config),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "step": step,
            best_key: sign * best,
            "valid": last_valid,
            "rng": {"torch": torch.get_rng_state(), "batches": generator.get_state()},
            "batcher": task.batcher.state_dict(),
            "carried_state": [s.cpu() for s in carried] if carried else [],
            "train_seconds": seconds(),
            "torch_version": str(torch.__version__),
        }

    model.train()
    tick, items_since = time.perf_counter(), 0
    for step in range(start_step + 1, config.steps + 1):
        batch = task.batcher.next_batch()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
            loss, new_state, items = task.loss(batch, carried, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        schedule.step()
        carried = detach_state(new_state)
        items_since += items
        now = time.perf_counter()
        reporter.step(step, loss.item(), items_since / max(now - tick, 1e-9))
        if now - tick > 5.0:
            tick, items_since = now, 0
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

        if step % config.eval_every == 0 or step == config.steps:
            model.eval()
            last_valid = task.evaluate(device)
            model.train()
            is_best = sign * last_valid[task.best_metric] < best
            log.append(
                {
                    "step": step,
                    "train_loss": loss.item(),
                    "lr": schedule.get_last_lr()[0],
                    "seconds": round(seconds(), 2),
                    **{f"valid_{k}": v for k, v in last_valid.items()},
                }
            )
            if is_best:
                best = sign * last_valid[task.best_metric]
                save_checkpoint(out / "best.pt", payload(step))
            reporter.evaluated(step, last_valid, is_best)
        if config.sample_every and step % config.sample_every == 0:
            text = task.sample(step)
            if text is not None:
                reporter.sample(step, text)
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint(out / "last.pt", payload(step))

    summary = {
        "step": config.steps,
        best_key: sign * best,
        "valid": last_valid,
        "train_seconds": round(seconds(), 1),
        "out": str(out),
    }
    reporter.end(summary)
    return summary
