"""Rich rendering of long-running work (training progress) on stderr."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rnnedge.console import stderr
from rnnedge.train.loop import TrainReporter

FACTS = (
    ("vocab", "vocabulary {:,}"),
    ("train_chars", "{:,} training"),
    ("valid_chars", "{:,} held-out characters"),
    ("train_examples", "{:,} training"),
    ("valid_examples", "{:,} validation examples"),
    ("classes", "{} classes"),
)


def metrics_line(metrics: dict[str, Any]) -> str:
    """Held-out figures: bits/char for language models, accuracy/F1 for classifiers."""
    if "bpc" in metrics:
        return (
            f"held-out loss {metrics['loss']:.4f}, perplexity {metrics['perplexity']:.3f}, "
            f"{metrics['bpc']:.4f} bits/char"
        )
    line = f"validation accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
    return line + (f", exact sequences {metrics['exact']:.4f}" if "exact" in metrics else "")


class RichTrainReporter(TrainReporter):
    """Progress bar (step, smoothed loss, items/s, ETA); evaluations as log lines.

    `items` names what the throughput counts (chars for language models, sequences for
    classifiers); language models also show the loss in bits per character.
    """

    def __init__(self, items: str = "chars") -> None:
        loss_text = "loss {task.fields[loss]:.3f}" + (
            "  bpc {task.fields[bpc]:.3f}" if items == "chars" else ""
        )
        self.progress = Progress(
            TextColumn("[bold]train[/]"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn(loss_text),
            TextColumn("{task.fields[speed]:,.0f} " + items + "/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=stderr,
            transient=False,
        )
        self.items = items
        self.task = None
        self.smoothed = math.nan
        # Without a terminal the bar cannot redraw: log a plain line now and then instead.
        self.plain_every_s = None if stderr.is_terminal else 60.0
        self.last_plain = time.monotonic()

    def start(self, total_steps: int, start_step: int, info: dict[str, Any]) -> None:
        facts = [template.format(info[key]) for key, template in FACTS if key in info]
        stderr.print(
            f"device {info['device']}, {info['params']:,} parameters, "
            + ", ".join(facts)
            + (f"; resuming at step {start_step}" if start_step else "")
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=total_steps, completed=start_step, loss=math.nan, bpc=math.nan, speed=0.0
        )

    def step(self, step: int, loss: float, items_per_s: float) -> None:
        # Exponential moving average: the per-batch loss is too noisy to read.
        self.smoothed = loss if math.isnan(self.smoothed) else 0.98 * self.smoothed + 0.02 * loss
        self.progress.update(
            self.task,
            completed=step,
            loss=self.smoothed,
            bpc=self.smoothed / math.log(2),
            speed=items_per_s,
        )
        if self.plain_every_s and time.monotonic() - self.last_plain > self.plain_every_s:
            self.last_plain = time.monotonic()
            stderr.print(
                f"step {step}: train loss {self.smoothed:.4f}, {items_per_s:,.0f} {self.items}/s"
            )

    def evaluated(self, step: int, metrics: dict[str, float], best: bool) -> None:
        mark = " [green](best)[/]" if best else ""
        self.progress.console.print(f"step {step}: {metrics_line(metrics)}{mark}")

    def sample(self, step: int, text: str) -> None:
        self.progress.console.print(f"[dim]sample at step {step}:[/] {escape(repr(text))}")

    def end(self, summary: dict[str, Any]) -> None:
        self.progress.stop()
        best = {k: v for k, v in summary.items() if k.startswith("best_valid_")}
        figures = ", ".join(f"{k.removeprefix('best_valid_')} {v:.4f}" for k, v in best.items())
        stderr.print(
            f"done: best held-out {figures}, {summary['train_seconds']:.0f} s of "
            f"training; checkpoints in {summary['out']}"
        )
