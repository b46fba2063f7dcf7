"""The `rnnedge` command line: parse → call the library → render.

Results go to stdout (generated text as plain flushed writes, so pipes work); progress,
logs and errors go to stderr. A user mistake is one line on stderr and exit code 1, never
a traceback; Ctrl-C exits 130 and a closed pipe ends quietly.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from typer.core import TyperGroup

from rnnedge.console import stderr, stdout
from rnnedge.errors import RnnedgeError


class RnnedgeGroup(TyperGroup):
    """Turns library errors, Ctrl-C and broken pipes into clean exits for every subcommand."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RnnedgeError as exc:
            stderr.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            stderr.print("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): stop quietly, and keep Python from
            # complaining when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None


def new_app(help_text: str) -> typer.Typer:
    return typer.Typer(
        cls=RnnedgeGroup,
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
    )


app = new_app("Recurrent models from PyTorch training to stateful ONNX graphs on onnxruntime.")
train_app = new_app("Train a model (needs the `train` extra: torch).")
infer_app = new_app("Run a model with onnxruntime (no torch).")
app.add_typer(train_app, name="train")
app.add_typer(infer_app, name="infer")

ModelArg = Annotated[
    Path | None,
    typer.Argument(
        help="rnnedge .onnx model (default: the shipped KJV char-LSTM, or $RNNEDGE_MODEL)",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(help="onnxruntime intra-op threads (default 1, or $RNNEDGE_THREADS)."),
]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise RnnedgeError("this command needs torch: pip install 'rnnedge[train]'") from None


@train_app.command("lm")
def train_lm(
    text: Annotated[Path, typer.Option(help="UTF-8 training text.")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints and metrics.")] = Path(
        "runs/lm"
    ),
    cell: Annotated[str, typer.Option(help="rnn, gru or lstm.")] = "lstm",
    hidden: int = 256,
    layers: int = 2,
    embed_dim: Annotated[int, typer.Option(help="Embedding size; 0 = one-hot input.")] = 64,
    dropout: Annotated[
        float, typer.Option(help="Dropout between layers and before the head.")
    ] = 0.0,
    batching: Annotated[
        str,
        typer.Option(
            help="random windows (state reset) or sequential (state carried, truncated BPTT)."
        ),
    ] = "random",
    batch_size: int = 64,
    seq_len: Annotated[int, typer.Option(help="Characters per window (BPTT length).")] = 100,
    optimizer: Annotated[str, typer.Option(help="adamw, adam or sgd.")] = "adamw",
    lr: float = 2e-3,
    weight_decay: float = 0.0,
    clip: Annotated[float, typer.Option(help="Global gradient-norm clip.")] = 5.0,
    schedule: Annotated[str, typer.Option(help="none or cosine.")] = "none",
    warmup_steps: int = 0,
    steps: int = 2000,
    eval_every: int = 200,
    checkpoint_every: int = 200,
    sample_every: Annotated[int, typer.Option(help="Preview sample every N steps; 0 = never.")] = 0,
    valid_fraction: Annotated[float, typer.Option(help="Held-out tail of the text.")] = 0.1,
    precision: Annotated[str, typer.Option(help="fp32 or bf16 (autocast).")] = "fp32",
    seed: int = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int, typer.Option(help="torch threads; 0 = torch's default.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from last.pt.")] = False,
) -> None:
    """Train a character language model; held-out bits/char, checkpoints best.pt and last.pt."""
    options = {**locals(), "text": str(text), "out": str(out)}  # the options, one to one
    require_torch()
    from rnnedge.cli_render import RichTrainReporter
    from rnnedge.train.lm import LMTrainConfig, fit

    fit(LMTrainConfig(**options), RichTrainReporter())


@app.command("export")
def export_command(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint from `rnnedge train` (.pt).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the .onnx.")],
    quantize: Annotated[Optional[str], typer.Option(help="int8: dynamic int8 weights.")] = None,  # noqa: UP045
    heldout: Annotated[
        Path | None,
        typer.Option(
            help="Text to measure the int8 quality change on (training file: its held-out tail)."
        ),
    ] = None,
    validate: Annotated[bool, typer.Option(help="Validate against torch (on by default).")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Export a checkpoint to one validated, self-describing ONNX file."""
    require_torch()
    from rnnedge.exporter import export_checkpoint

    with stderr.status("exporting and validating…"):
        result = export_checkpoint(
            checkpoint, output, quantize=quantize, heldout=heldout, run_validation=validate
        )
    if json_out:
        print_json(
            {
                "path": str(result.path),
                "size_bytes": result.size_bytes,
                "validation": result.manifest.validation,
            }
        )
        return
    from rnnedge.render import validation_lines

    stdout.print(f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB)")
    for line in validation_lines(result.manifest.validation):
        stdout.print(line)


@infer_app.command("generate")
def generate_command(
    model: ModelArg = None,
    prompt: Annotated[str, typer.Option(help="Text to continue (fed in one call).")] = "",
    max_new_tokens: int = 200,
    temperature: Annotated[
        float | None,
        typer.Option(help="0 = greedy; default from the model."),
    ] = None,
    top_k: Annotated[int, typer.Option(help="Sample from the k most likely; 0 = all.")] = 0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass; 1 = off.")] = 1.0,
    seed: Annotated[Optional[int], typer.Option(help="Same seed, same text.")] = None,  # noqa: UP045
    stop: Annotated[
        list[str] | None,
        typer.Option(help="Stop before this string (repeatable)."),
    ] = None,
    unknown: Annotated[
        str | None,
        typer.Option(help="Prompt characters outside the vocabulary: error (default) or skip."),
    ] = None,
    echo: Annotated[bool, typer.Option(help="Print the prompt before the continuation.")] = True,
    stats: Annotated[bool, typer.Option(help="Tokens/s and provider on stderr.")] = False,
    num_streams: Annotated[
        int,
        typer.Option(
            help="Generate N streams together in one batched call per token "
            "(seeds SEED, SEED+1, …); each is printed when it finishes."
        ),
    ] = 1,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Stream generated text to stdout as it is made."""
    from rnnedge.runtime import SamplingConfig, load

    generator = load(model, device=device, threads=threads)
    defaults = generator.manifest.sampling
    sampling = SamplingConfig(
        temperature=defaults.get("temperature", 1.0) if temperature is None else temperature,
        top_k=top_k,
        top_p=top_p,
    )
    if num_streams != 1:
        run_streams(
            generator,
            prompt,
            num_streams,
            max_new_tokens,
            sampling,
            seed,
            tuple(stop or ()),
            unknown,
            json_out,
            stats,
        )
        return
    began = time.perf_counter()
    pieces = generator.generate(
        prompt,
        max_new_tokens=max_new_tokens,
        sampling=sampling,
        seed=seed,
        stop=tuple(stop or ()),
        unknown=unknown,
    )
    if json_out:
        text = "".join(pieces)
        print_json(
            {
                "prompt": prompt,
                "text": text,
                "provider": generator.provider,
                "seconds": time.perf_counter() - began,
            }
        )
        return
    if echo and prompt:
        sys.stdout.write(prompt)
    count = 0
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
        count += len(piece)
    sys.stdout.write("\n")
    sys.stdout.flush()
    if stats:
        seconds = time.perf_counter() - began
        stderr.print(
            f"{count} characters in {seconds:.3f} s ({count / seconds:,.0f} tokens/s "
            f"incl. prefill) on {generator.provider}"
        )


def run_streams(
    generator: Any,
    prompt: str,
    count: int,
    max_new_tokens: int,
    sampling: Any,
    seed: int | None,
    stop: tuple[str, ...],
    unknown: str | None,
    json_out: bool,
    stats: bool,
) -> None:
    """`--num-streams`: N generations in one batch; each printed (or collected) when done."""
    from rnnedge.runtime.streams import StreamBatch

    if count < 1:
        raise RnnedgeError(f"--num-streams must be at least 1, got {count}")
    began = time.perf_counter()
    batch = StreamBatch(generator)
    for index in range(count):
        batch.add(
            prompt, max_new_tokens, sampling, None if seed is None else seed + index, stop, unknown
        )
    texts = {index: "" for index in range(count)}
    for index, text in batch.run():
        texts[index] += text
    seconds = time.perf_counter() - began
    if json_out:
        print_json(
            {
                "prompt": prompt,
                "streams": [texts[i] for i in range(count)],
                "provider": generator.provider,
                "seconds": seconds,
            }
        )
        return
    for index in range(count):
        sys.stdout.write(f"--- stream {index} ---\n{prompt}{texts[index]}\n")
    sys.stdout.flush()
    if stats:
        total = sum(len(t) for t in texts.values())
        stderr.print(
            f"{count} streams, {total} characters in {seconds:.3f} s "
            f"({total / seconds:,.0f} tokens/s in total) on {generator.provider}"
        )


@app.command("inspect")
def inspect_command(model: ModelArg = None, json_out: JsonOpt = False) -> None:
    """Task, architecture, inputs/outputs, state layout, vocabulary, validation, providers."""
    from rnnedge.render import inspect_table
    from rnnedge.runtime import available_providers, default_model_path
    from rnnedge.runtime.session import open_session

    path = model or default_model_path()
    loaded = open_session(path, device="cpu")
    info = {
        "path": str(path),
        "size_bytes": Path(path).stat().st_size,
        "providers_available": available_providers(),
        "manifest": loaded.manifest,
    }
    if json_out:
        from dataclasses import asdict

        print_json({**info, "manifest": asdict(loaded.manifest)})
        return
    stdout.print(inspect_table(info))


@app.command("eval")
def eval_command(
    model: ModelArg = None,
    text: Annotated[Optional[Path], typer.Option(help="UTF-8 text to score.")] = None,  # noqa: UP045
    tail: Annotated[
        float,
        typer.Option(
            help="Score only the last fraction of the file (0.1 = a 10 % held-out tail); 1 = all."
        ),
    ] = 1.0,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Bits per character and perplexity of a text, computed by the runtime."""
    from rnnedge.runtime import load
    from rnnedge.textio import read_text

    if text is None:
        raise RnnedgeError("--text FILE is required: the text to score")
    if not 0.0 < tail <= 1.0:
        raise RnnedgeError(f"--tail must be in (0, 1], got {tail}")
    generator = load(model, device=device, threads=threads)
    content = read_text(text)
    content = content[round(len(content) * (1.0 - tail)) :]
    began = time.perf_counter()
    metrics = generator.evaluate(content)
    metrics["seconds"] = time.perf_counter() - began
    if json_out:
        print_json({"model": str(model or "default"), "text": str(text), "tail": tail, **metrics})
        return
    stdout.print(
        f"{metrics['bpc']:.4f} bits/char, perplexity {metrics['perplexity']:.4f}, "
        f"loss {metrics['loss']:.4f} nats over {metrics['chars']:,} characters "
        f"({metrics['chars'] / metrics['seconds']:,.0f} chars/s)"
    )


@app.command("bench")
def bench_command(
    model: ModelArg = None,
    steps: Annotated[int, typer.Option(help="Timed steps at batch 1.")] = 200,
    cold: Annotated[bool, typer.Option(help="Also time fresh-process cold starts.")] = True,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Step latency, batched-stream throughput, prefill and cold start of one model."""
    from rnnedge.bench import bench_generator, cold_start
    from rnnedge.render import bench_table
    from rnnedge.runtime import load

    generator = load(model, device=device, threads=threads)
    with stderr.status("measuring…"):
        report = bench_generator(generator, steps=steps)
        report["provider"] = generator.provider
        report["cold_start"] = cold_start(model) if cold else None
    if json_out:
        print_json(report)
    else:
        stdout.print(bench_table(report))


@app.command("doctor")
def doctor_command(json_out: JsonOpt = False) -> None:
    """Check the installation: onnxruntime build(s), providers, torch, the default model."""
    from rnnedge.doctor import diagnose
    from rnnedge.render import doctor_table

    report = diagnose()
    if json_out:
        print_json(report)
    else:
        stdout.print(doctor_table(report))
    if report["problems"]:
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point."""
    app()
