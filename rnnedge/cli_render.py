"""Rich rendering of long-running work (training progress) on stderr."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rnnedge.console import stderr
from rnnedge.train.lm import TrainReporter


class RichTrainReporter(TrainReporter):
    """Progress bar with step, loss, bits/char, chars/s and ETA; evaluations as log lines."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]train[/]"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]:.3f}  bpc {task.fields[bpc]:.3f}"),
            TextColumn("{task.fields[speed]:,.0f} chars/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=stderr,
            transient=False,
        )
        self.task = None
        self.smoothed = math.nan
        # Without a terminal the bar cannot redraw: log a plain line now and then instead.
        self.plain_every_s = None if stderr.is_terminal else 60.0
        self.last_plain = time.monotonic()

    def start(self, total_steps: int, start_step: int, info: dict[str, Any]) -> None:
        stderr.print(
            f"device {info['device']}, {info['params']:,} parameters, vocabulary "
            f"{info['vocab']}, {info['train_chars']:,} training / "
            f"{info['valid_chars']:,} held-out characters"
            + (f", resuming at step {start_step}" if start_step else "")
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=total_steps, completed=start_step, loss=math.nan, bpc=math.nan, speed=0.0
        )

    def step(self, step: int, loss: float, chars_per_s: float) -> None:
        # Exponential moving average: the per-batch loss is too noisy to read.
        self.smoothed = loss if math.isnan(self.smoothed) else 0.98 * self.smoothed + 0.02 * loss
        self.progress.update(
            self.task,
            completed=step,
            loss=self.smoothed,
            bpc=self.smoothed / math.log(2),
            speed=chars_per_s,
        )

    def evaluated(self, step: int, metrics: dict[str, float], best: bool) -> None:
        mark = " [green](best)[/]" if best else ""
        self.progress.console.print(
            f"step {step}: held-out loss {metrics['loss']:.4f}, perplexity "
            f"{metrics['perplexity']:.3f}, {metrics['bpc']:.4f} bits/char{mark}"
        )

    def sample(self, step: int, text: str) -> None:
        self.progress.console.print(f"[dim]sample at step {step}:[/] {text!r}")

    def end(self, summary: dict[str, Any]) -> None:
        self.progress.stop()
        stderr.print(
            f"done: best held-out {summary['best_valid_bpc']:.4f} bits/char, "
            f"{summary['train_seconds']:.0f} s of training; checkpoints in {summary['out']}"
        )
