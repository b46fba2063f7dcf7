"""Everything the CLI shows: the two consoles (results on stdout; progress, logs and errors
on stderr), tables for inspect / doctor / bench / eval, stream bars, plots, and the training
progress display. Presentation only: no library work happens here.
"""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from rnnedge.contract import Manifest

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False)


def validation_lines(validation: dict[str, Any]) -> list[str]:
    """One line per validation suite: what was checked and the key figure."""
    lines = []
    for suite in ("fp32", "int8", "fp16"):
        checks = validation.get(suite)
        if not checks:
            continue
        parts = []
        for name, figures in checks.items():
            reported_only = str(figures.get("gate", "")).startswith("reported")
            mark = "reported" if reported_only else ("ok" if figures.get("passed") else "FAILED")
            if figures.get("gate") == "argmax agreement":
                detail = (
                    f"argmax agreement {figures['argmax_agreement']:.4f}, "
                    f"max |Δ| {figures['max_abs_diff']:.2e}"
                )
            elif "max_abs_diff" in figures:
                detail = f"max |Δ| {figures['max_abs_diff']:.2e}"
            elif "argmax_agreement" in figures:
                detail = f"argmax agreement {figures['argmax_agreement']:.4f}"
            elif "identical_prefix" in figures:
                detail = f"{figures['identical_prefix']}/{figures['tokens']} greedy tokens equal"
            else:
                detail = ""
            parts.append(f"{name} {mark}" + (f" ({detail})" if detail else ""))
        lines.append(f"validation {suite}: " + ", ".join(parts))
    quality = validation.get("quality")
    if quality:
        lines.append(quality_line(quality))
    if not validation.get("validated", True):
        lines.append("validation skipped (--no-validate)")
    return lines


def quality_line(quality: dict[str, Any]) -> str:
    """The held-out change from fp32 to the reduced precision, and where it was measured."""
    precision = next(
        key.split("_", 1)[1]
        for key in quality
        if key.startswith(("accuracy_", "bpc_")) and key.endswith(("int8", "fp16"))
    )
    where = f" on {quality['measured_on']}" if "measured_on" in quality else ""
    if "accuracy_fp32" in quality:
        return (
            f"held-out accuracy: fp32 {quality['accuracy_fp32']:.4f} → {precision} "
            f"{quality[f'accuracy_{precision}']:.4f} ({quality['accuracy_change_points']:+.2f} "
            f"points) over {quality['heldout_examples']:,} examples{where}"
        )
    return (
        f"held-out bits/char: fp32 {quality['bpc_fp32']:.4f} → {precision} "
        f"{quality[f'bpc_{precision}']:.4f} ({quality['bpc_change_relative']:+.2%}) over "
        f"{quality['heldout_chars']:,} characters{where}"
    )


def key_value_table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, escape(value))
    return table


def inspect_table(info: dict[str, Any]) -> Table:
    manifest: Manifest = info["manifest"]
    arch = manifest.architecture
    training = manifest.training
    tensors = lambda specs: "\n".join(  # noqa: E731
        f"{t.name} {t.dtype} [{', '.join(map(str, t.shape))}]" for t in specs
    )
    identity = manifest.identity
    rows = [
        ("file", f"{info['path']} ({info['size_bytes'] / 1e6:.2f} MB)"),
        ("model", identity_line(identity)),
        ("data", data_line(identity.get("data", {}))),
        ("task", manifest.task),
        ("schema", manifest.schema_version),
        (
            "architecture",
            f"{'bidirectional ' if arch.get('bidirectional') else ''}"
            f"{arch.get('cell', '?').upper()} {arch.get('layers')} × "
            f"{arch.get('hidden')}, input {arch.get('input')}"
            + (f", {arch['pooling']} pooling" if arch.get("pooling") else "")
            + f", {arch.get('parameters', 0):,} parameters",
        ),
        ("vocabulary", vocabulary_line(manifest.tokenizer)),
        ("inputs", tensors(manifest.inputs)),
        ("outputs", tensors(manifest.outputs)),
        ("state layout", manifest.state_layout),
        ("quantization", str(manifest.export.get("quantization") or "none (fp32)")),
        ("operator domains", ", ".join(manifest.operator_domains) or "standard ONNX only"),
        ("training", training_line(training)),
        ("validation", "\n".join(validation_lines(manifest.validation)) or "none"),
        ("providers here", ", ".join(info["providers_available"])),
    ]
    return key_value_table("rnnedge model", rows)


def identity_line(identity: dict[str, Any]) -> str:
    """Name, version, license and description of a model (files before 1.1 have none)."""
    if not identity:
        return "no identity (exported before manifest 1.1)"
    return (
        f"{identity.get('name', '?')} {identity.get('version', '')}, license "
        f"{identity.get('license', '?')}: {identity.get('description', '')}"
    )


def data_line(data: dict[str, Any]) -> str:
    return f"{data.get('source', '?')} (license: {data.get('license', '?')})" if data else "?"


def vocabulary_line(tokenizer: dict[str, Any]) -> str:
    if not tokenizer.get("vocab"):
        return "none (feature vectors)"
    return (
        f"{len(tokenizer['vocab'])} {tokenizer['kind']}s "
        f"({tokenizer.get('unit', tokenizer['kind'])}), unknown: {tokenizer['unknown']}"
    )


def training_line(training: dict[str, Any]) -> str:
    """Step, best held-out figure (bits/char for LMs, accuracy for classifiers), seconds."""
    if "trained_by" in training:  # a user's own module: rnnedge knows only its files
        files = ", ".join(f"{k} {v}" for k, v in training.items() if k != "trained_by")
        return f"{training['trained_by']}" + (f" ({files})" if files else "")
    if training.get("best_valid_accuracy") is not None:
        held_out = f"held-out accuracy {training['best_valid_accuracy']:.4f}"
    else:
        held_out = f"held-out {training.get('best_valid_bpc') or 0:.4f} bits/char"
    return f"step {training.get('step')}, {held_out}, {training.get('train_seconds') or 0:.0f} s"


def doctor_table(report: dict[str, Any]) -> Table:
    builds = report["onnxruntime_builds"]
    rows = [
        ("rnnedge", report["rnnedge"]),
        ("python", f"{report['python']} on {report['platform']}"),
        ("onnxruntime", ", ".join(f"{k} {v}" for k, v in builds.items()) or "not installed"),
        ("providers", ", ".join(report["providers"]) or "-"),
        ("CUDA", cuda_line(report.get("cuda"), report.get("onnxruntime_module"))),
        ("GPU", gpu_line(report.get("gpu"))),
        ("torch", report["torch"] or "not installed (train/export unavailable)"),
        ("default model", report["default_model"] or "-"),
        ("problems", "\n".join(report["problems"]) or "none"),
    ]
    return key_value_table("rnnedge doctor", rows)


def cuda_line(cuda: dict[str, Any] | None, module: dict[str, Any] | None) -> str:
    """Whether a CUDA session really runs here (a tiny one was run), and why not."""
    if cuda is None:
        return "-"
    build = f" (onnxruntime built for CUDA {module['built_for_cuda']})" if module else ""
    if cuda["usable"]:
        return f"runs: a CUDA session was created and ran{build}"
    return f"cannot run: {cuda['reason']}"


def gpu_line(gpu: dict[str, Any] | None) -> str:
    if not gpu or not gpu["gpus"]:
        return f"none ({gpu['reason']})" if gpu else "-"
    return "\n".join(f"{g['name']}, driver {g['driver']}, {g['memory']}" for g in gpu["gpus"])


def bench_table(report: dict[str, Any]) -> Table:
    """`rnnedge bench`: one row per figure, medians (p90) and throughputs. The bound step is
    what `generate` runs (IO binding); the stream rows time plain run() calls on numpy
    arrays, what an app calling the session directly pays."""
    step = report["step_batch1"]
    rows = [
        ("provider", report["provider"]),
        (
            "step, 1 stream, bound",
            f"{step['median'] * 1e6:,.0f} µs median, {step['p90'] * 1e6:,.0f} µs "
            f"p90 ({1 / step['median']:,.0f} tokens/s)",
        ),
    ]
    for batch, figures in report["streams"].items():
        rows.append(
            (
                f"{batch} stream{'s' * (batch != 1)}, run()",
                f"{figures['tokens_per_s']:,.0f} tokens/s in total "
                f"({figures['median'] * 1e3:.2f} ms a step)",
            )
        )
    for batch, figures in report["end_to_end"].items():
        rows.append(
            (
                f"generate, {batch} stream{'s' * (batch != 1)}",
                f"{figures['tokens_per_s']:,.0f} tokens/s with sampling and decoding",
            )
        )
    prefill = report["prefill"]
    rows.append((f"prefill {prefill['length']}", f"{prefill['tokens_per_s']:,.0f} tokens/s"))
    if report.get("cold_start"):
        cold = report["cold_start"]
        rows.append(
            (
                "cold start",
                f"{cold['median_s']:.3f} s median of {cold['runs']}, peak RSS "
                f"{cold['peak_rss_mb']:.0f} MB",
            )
        )
    return key_value_table("rnnedge bench", rows)


def classify_bench_table(report: dict[str, Any]) -> Table:
    """`rnnedge bench` on a classifier: sequences/s by batch size."""
    rows = [("provider", report["provider"])]
    for batch, figures in report["classify"].items():
        rows.append(
            (
                f"batch {batch}",
                f"{figures['sequences_per_s']:,.0f} sequences/s "
                f"({figures['median'] * 1e3:.2f} ms a call, p90 {figures['p90'] * 1e3:.2f})",
            )
        )
    return key_value_table("rnnedge bench", rows)


def eval_lines(metrics: dict[str, Any], labels: list[str]) -> list[Any]:
    """`rnnedge eval` output: one line for LMs; figures and a confusion table for classifiers."""
    if "bpc" in metrics:
        return [
            f"{metrics['bpc']:.4f} bits/char, perplexity {metrics['perplexity']:.4f}, loss "
            f"{metrics['loss']:.4f} nats over {metrics['chars']:,} characters "
            f"({metrics['chars'] / metrics['seconds']:,.0f} chars/s)"
            + (
                f"; adaptive output layer, rate {metrics['adapt']:g}, "
                f"{metrics['streams']} stream{'s' if metrics['streams'] > 1 else ''}"
                if metrics.get("adapt")
                else ""
            )
        ]
    lines: list[Any] = [
        f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f} over "
        f"{metrics['examples']:,} examples ({metrics['examples'] / metrics['seconds']:,.0f}/s)"
        + (f", exact sequences {metrics['exact']:.4f}" if "exact" in metrics else "")
    ]
    table = Table(title="confusion (rows: truth, columns: predicted)", title_justify="left")
    table.add_column("")
    for label in labels:
        table.add_column(escape(label), justify="right")
    table.add_column("recall", justify="right")
    for label, row, recall in zip(labels, metrics["confusion"], metrics["recall"], strict=True):
        table.add_row(escape(label), *map(str, row), f"{recall:.3f}")
    lines.append(table)
    return lines


def predictions_table(shown: list[str], predictions: list[Any]) -> Table:
    """One row per input: the label, its probability and the runners-up."""
    table = Table(show_header=True)
    table.add_column("input", overflow="ellipsis", max_width=60)
    table.add_column("label")
    table.add_column("probability", justify="right")
    table.add_column("top")
    for text, prediction in zip(shown, predictions, strict=True):
        extra = prediction.extra or {}
        label = (
            f"{prediction.label} (bits, LSB first: {''.join(extra['steps'])})"
            if ("sum" in extra)
            else prediction.label
        )
        runners = ", ".join(f"{k} {p:.3f}" for k, p in prediction.top[1:])
        table.add_row(
            escape(str(text)), escape(label), f"{prediction.probability:.4f}", escape(runners)
        )
    return table


def stream_lines(
    steps: Any, labels: list[str], pieces: list[str] | None = None, width: int = 30
) -> list[str]:
    """A bar per step: how sure the model is of its current best label as data arrives,
    after the character or word that step read (for text models)."""
    shown = [repr(p)[1:-1] for p in pieces] if pieces else None  # newlines, tabs visible
    pad = max(map(len, shown)) if shown else 0
    lines = []
    for index, probs in enumerate(steps):
        best = int(probs.argmax())
        filled = round(float(probs[best]) * width)
        read = f"{escape(shown[index]):<{pad}}  " if shown else ""
        lines.append(
            f"step {index + 1:>4}  {read}[green]{'█' * filled}[/]{'·' * (width - filled)} "
            f"{probs[best]:.3f} {escape(labels[best])}"
        )
    return lines


def step_json_lines(steps: Any, labels: list[str]) -> list[str]:
    """One JSON line per step: its number and every label's probability."""
    import json

    return [
        json.dumps(
            {"step": index + 1, "probabilities": dict(zip(labels, map(float, probs), strict=True))},
            ensure_ascii=False,
        )
        + "\n"
        for index, probs in enumerate(steps)
    ]


def prediction_line(steps: int, prediction: Any) -> str:
    """A live stream's current answer: steps read so far, best label, the runners-up."""
    others = ", ".join(f"{escape(k)} {p:.3f}" for k, p in prediction.top[1:])
    return (
        f"after {steps:>5} steps: [bold]{escape(prediction.label)}[/] "
        f"{prediction.probability:.3f}" + (f"  ({others})" if others else "")
    )


def bench_report_table(task: str, report: dict[str, Any]) -> Table:
    """The `bench` table for a classifier or a language model."""
    return classify_bench_table(report) if task == "classification" else bench_table(report)


def plot_steps(steps: Any, labels: list[str], title: str, path: Any) -> None:
    """Per-step class probabilities as stacked bar rows (the row-by-row MNIST tutorial's
    picture)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from rnnedge.errors import DependencyError

        raise DependencyError("--plot needs matplotlib: pip install 'rnnedge[plot]'") from None
    figure, axis = plt.subplots(figsize=(8, 0.25 * len(steps) + 1.5))
    axis.imshow(steps, aspect="auto", cmap="Blues", vmin=0, vmax=1)
    axis.set(
        xticks=range(len(labels)),
        yticks=range(len(steps)),
        xlabel="class",
        ylabel="step (rows read)",
        title=f"{title}: probability after each step",
    )
    axis.set_xticklabels(labels, rotation=45, ha="right")
    axis.set_yticklabels([str(i + 1) for i in range(len(steps))])
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


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


class RichTrainReporter:
    """Progress bar (step, smoothed loss, items/s, ETA); evaluations as log lines.

    `items` names what the throughput counts (chars for language models, sequences for
    classifiers); language models also show the loss in bits per character.
    """

    def __init__(self, items: str = "chars") -> None:
        self.progress = Progress(
            TextColumn("[bold]train[/]"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[figures]}"),
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
            "train", total=total_steps, completed=start_step, figures="loss –", speed=0.0
        )

    def step(self, step: int, loss: float, items_per_s: float) -> None:
        # Exponential moving average: the per-batch loss is too noisy to read.
        self.smoothed = loss if math.isnan(self.smoothed) else 0.98 * self.smoothed + 0.02 * loss
        self.progress.update(self.task, completed=step, figures=self.figures(), speed=items_per_s)
        if self.plain_every_s and time.monotonic() - self.last_plain > self.plain_every_s:
            self.last_plain = time.monotonic()
            stderr.print(
                f"step {step}: train loss {self.smoothed:.4f}, {items_per_s:,.0f} {self.items}/s"
            )

    def figures(self) -> str:
        """The smoothed training loss (and bits/char for a language model) as shown."""
        shown = f"loss {self.smoothed:.3f}"
        if self.items == "chars":
            shown += f"  bpc {self.smoothed / math.log(2):.3f}"
        return shown

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


def models_table(models: list[Any]) -> Table:
    """`rnnedge models`: the shipped models (catalog.ShippedModel), one row each."""
    table = Table(title="shipped models (use a name or alias wherever a MODEL goes)")
    # Names and aliases are what the user types: never cut them; the description wraps.
    longest = max((len(m.name) for m in models), default=4)
    table.add_column("name", no_wrap=True, min_width=longest)
    table.add_column("aliases", no_wrap=True)
    table.add_column("task", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("description")
    for model in models:
        table.add_row(
            model.name,
            ", ".join(model.aliases) or "-",
            model.task,
            f"{model.size_bytes / 1e6:.2f} MB",
            escape(model.description),
        )
    return table
