"""The training engine every trainer shares: optimizer, schedule, precision, evaluation,
metrics, atomic checkpoints and exact resume.

A trainer supplies a ``TrainingTask`` (model, batches, loss, evaluation, what to store);
the ``Engine`` runs the steps: ``restore`` → ``train_step`` … ``evaluate`` (keeps best.pt)
… ``checkpoint``. Everything a run needs to continue after a kill lives in ``last.pt``:
weights, optimizer and schedule, step, RNG states (CPU, batches, CUDA), the batcher's
position and any carried recurrent state, so a resumed run ends with the same weights as an
unbroken one. What a resume may change is decided in train/resume.py. Under `torchrun`
each rank trains on its shard of every batch through DDP (train/distributed.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnedge.errors import InputError
from rnnedge.train.checkpoint import save_checkpoint
from rnnedge.train.distributed import (
    current_ranks,
    gather_state,
    join,
    leave,
    shard_state,
    wrap,
)
from rnnedge.train.resume import (
    NOT_STORED,
    restore_rng_states,
    rng_states,
    set_aside_best,
)

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
    # With resume: continue on a data file other than the run's, if its vocabulary covers it.
    allow_new_data: bool = False
    # The options the user typed (the CLI knows); None: those that differ from the default.
    # On resume every option not given is the run's own (train/resume.py).
    given: tuple[str, ...] | None = None

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

    def resume_may_change(self) -> tuple[str, ...]:
        """Options a resume may set to another value than the run's: how long, how often
        and how precisely to train, not what is trained (device and threads are always free)."""
        return ("steps", "eval_every", "checkpoint_every", "sample_every", "precision")

    def stored(self) -> dict[str, Any]:
        """The options a checkpoint records (not the ones that only steer one invocation)."""
        return {k: v for k, v in asdict(self).items() if k not in NOT_STORED}


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
    """The optimizer `config.optimizer` names, over all of the model's parameters."""
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


class NullLog:
    """Where ranks other than 0 log: nowhere."""

    def append(self, record: dict[str, Any]) -> None: ...


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


def prepare_runtime(config: LoopConfig) -> torch.device:
    """Threads and device, before any tensor is made."""
    config.check()
    if config.threads:
        torch.set_num_threads(config.threads)
    return join(choose_device(config.device), getattr(config, "batch_size", 1))


def require_precision(precision: str, model: nn.Module, device: torch.device) -> None:
    """Refuse ``--precision bf16`` where torch cannot run the model's recurrent cells in it.

    On a CPU without bf16 support (e.g. AVX2 only) oneDNN has no bf16 LSTM kernel and the
    first step dies in a traceback. A tiny copy of each cell under autocast finds out first;
    fork_rng keeps the probe's weight init from shifting the seeded run.
    """
    if precision != "bf16":
        return
    cells = sorted({type(m) for m in model.modules() if isinstance(m, nn.RNNBase)}, key=str)
    for cell in cells:
        with torch.random.fork_rng(devices=[]):
            probe = cell(4, 4, batch_first=True).to(device)
            try:
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    outputs, _ = probe(torch.zeros(1, 2, 4, device=device))  # [1, 2, 4]
                outputs.float().sum().backward()
            except RuntimeError as exc:
                reason = str(exc).strip().splitlines()[0].split(". ")[0].rstrip(".")
                raise InputError(
                    f"--precision bf16 does not work here: torch cannot run {cell.__name__} "
                    f"cells in bfloat16 on this {device.type} ({reason}); use --precision fp32"
                ) from None


@dataclass
class Progress:
    """Where the run stands; last.pt stores it, so a resume continues exactly here."""

    step: int = 0
    best: float = math.inf  # best held-out score so far, signed so that lower is better
    valid: dict[str, float] = field(default_factory=dict)  # the latest evaluation
    carried: State | None = None  # recurrent state carried into the next batch
    seconds_before: float = 0.0  # training time of earlier invocations of this run


class Throughput:
    """Items per second over a window of about five seconds, for the progress display."""

    def __init__(self) -> None:
        self.tick, self.items = time.perf_counter(), 0

    def add(self, items: int) -> float:
        """Count a batch's items; the current rate."""
        self.items += items
        now = time.perf_counter()
        rate = self.items / max(now - self.tick, 1e-9)
        if now - self.tick > 5.0:
            self.tick, self.items = now, 0
        return rate


class Engine:
    """One invocation of a run: model, optimizer, schedule and the run's progress."""

    def __init__(
        self,
        config: LoopConfig,
        task: TrainingTask,
        device: torch.device,
        generator: torch.Generator,
        reporter: TrainReporter,
    ) -> None:
        self.config, self.task, self.device = config, task, device
        self.generator, self.reporter = generator, reporter
        self.out = Path(config.out)
        self.model = task.model.to(device)
        self.ranks = current_ranks()
        wrap(task, self.model, device, self.ranks)  # DDP and batch shards under torchrun
        self.optimizer = build_optimizer(config, self.model)
        self.schedule = build_schedule(config, self.optimizer)
        self.best_key = f"best_valid_{task.best_metric}"
        self.sign = -1.0 if task.higher_is_better else 1.0  # compare as "lower is better"
        self.progress = Progress()
        self.began = time.perf_counter()

    def restore(self, resumed: dict[str, Any], new_data: bool) -> None:
        """Continue from `resumed` (a last.pt payload).

        On new data the best restarts and the batches start afresh: the run's best score and
        batch position belong to the old data, so they mean nothing for the new data.
        """
        self.model.load_state_dict(resumed["model"])
        self.optimizer.load_state_dict(resumed["optimizer"])
        self.schedule.load_state_dict(resumed["schedule"])
        restore_rng_states(resumed["rng"], self.generator)
        self.progress = Progress(
            step=int(resumed["step"]),
            best=self.sign * float(resumed[self.best_key]),
            valid=dict(resumed["valid"]),
            seconds_before=float(resumed["train_seconds"]),
        )
        if new_data:
            self.progress.best, self.progress.valid = math.inf, {}
            set_aside_best(self.out, self.progress.step)
            return
        self.task.batcher.load_state_dict(resumed["batcher"])
        carried = tuple(s.to(self.device) for s in resumed["carried_state"])
        self.progress.carried = shard_state(carried, self.ranks) or None

    def seconds(self) -> float:
        return self.progress.seconds_before + time.perf_counter() - self.began

    def train_step(self) -> tuple[float, int]:
        """One optimizer step on the next batch: (loss, items in the batch)."""
        batch = self.task.batcher.next_batch()
        bf16 = self.config.precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            # loss: scalar; new_state: None, or per state kind [layers, B, H] to carry on
            loss, new_state, items = self.task.loss(batch, self.progress.carried, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip)
        self.optimizer.step()
        self.schedule.step()
        self.progress.carried = detach_state(new_state)
        return loss.item(), items

    def evaluate(self, loss: float, log: MetricsLog) -> None:
        """Score the held-out data, log it, and keep best.pt if the score is the best yet."""
        self.model.eval()
        valid = self.task.evaluate(self.device)
        self.model.train()
        self.progress.valid = valid
        log.append(
            {
                "step": self.progress.step,
                "train_loss": loss,
                "lr": self.schedule.get_last_lr()[0],
                "seconds": round(self.seconds(), 2),
                **{f"valid_{k}": v for k, v in valid.items()},
            }
        )
        score = self.sign * valid[self.task.best_metric]
        is_best = score < self.progress.best
        if is_best:
            self.progress.best = score
            self.checkpoint("best.pt")
        self.reporter.evaluated(self.progress.step, valid, is_best)

    def sample(self) -> None:
        """A preview continuation for the progress display (tasks that have one)."""
        text = self.task.sample(self.progress.step)
        if text is not None:
            self.reporter.sample(self.progress.step, text)

    def checkpoint(self, name: str) -> None:
        """Write everything a resume (last.pt) or an export (best.pt) needs, atomically.
        Under torchrun every rank calls it for last.pt (their carried states are gathered)
        and rank 0 writes."""
        progress = self.progress
        carried = progress.carried
        if name == "last.pt":
            carried = gather_state(carried, self.ranks)
        if not self.ranks.main:
            return
        payload = {
            **self.task.describe(),
            "task": self.task.name,
            "train_config": self.config.stored(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "step": progress.step,
            self.best_key: self.sign * progress.best,
            "valid": progress.valid,
            "rng": rng_states(self.generator),
            "batcher": self.task.batcher.state_dict(),
            "carried_state": [s.cpu() for s in carried] if carried else [],
            "train_seconds": self.seconds(),
            "torch_version": str(torch.__version__),
        }
        save_checkpoint(self.out / name, payload)

    def train(self, log: MetricsLog) -> None:
        """Steps up to `config.steps`, evaluating, sampling and checkpointing on schedule."""
        config, kill_at = self.config, int(os.environ.get(KILL_AT_STEP_ENV, "0"))
        self.began, throughput = time.perf_counter(), Throughput()
        self.model.train()
        for step in range(self.progress.step + 1, config.steps + 1):
            loss, items = self.train_step()
            self.progress.step = step
            self.reporter.step(step, loss, throughput.add(items * self.ranks.world))
            if step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if self.ranks.main and (step % config.eval_every == 0 or step == config.steps):
                self.evaluate(loss, log)
            if self.ranks.main and config.sample_every and step % config.sample_every == 0:
                self.sample()
            if step % config.checkpoint_every == 0 or step == config.steps:
                self.checkpoint("last.pt")

    def summary(self) -> dict[str, Any]:
        """What the run reached: final step, best and latest held-out scores, time, folder."""
        return {
            "step": self.config.steps,
            self.best_key: self.sign * self.progress.best,
            "valid": self.progress.valid,
            "train_seconds": round(self.seconds(), 1),
            "out": str(self.out),
        }


def run(
    config: LoopConfig,
    task: TrainingTask,
    device: torch.device,
    resumed: dict[str, Any] | None,
    generator: torch.Generator,
    reporter: TrainReporter | None = None,
    new_data: bool = False,
) -> dict[str, Any]:
    """Train `task.model` for `config.steps` steps (from the resumed step, if any).

    `new_data`: the resume continues on other data than the run's (see train/resume.py).
    """
    main = current_ranks().main  # rank 0 reports and logs; one process: always
    reporter = (reporter if main else None) or TrainReporter()
    engine = Engine(config, task, device, generator, reporter)
    if resumed:
        engine.restore(resumed, new_data)
    require_precision(config.precision, engine.model, device)
    resume_step = engine.progress.step if resumed else None
    log = MetricsLog(engine.out / "metrics.jsonl", resume_step) if main else NullLog()
    params = sum(p.numel() for p in engine.model.parameters())
    info = {"device": str(device), "params": params, **task.info()}
    engine.reporter.start(config.steps, engine.progress.step, info)
    engine.train(log)
    summary = engine.summary()
    engine.reporter.end(summary)
    leave()
    return summary
