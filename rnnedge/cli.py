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
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from rnnedge.console import stderr, stdout
from rnnedge.errors import InputError, RnnedgeError


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
ScheduleOpt = Annotated[str, typer.Option(help="none or cosine (decay to 5 % of the peak).")]
PrecisionOpt = Annotated[str, typer.Option(help="fp32 or bf16 (autocast).")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        help="onnxruntime intra-op threads (default: $RNNEDGE_THREADS, else 1 for one stream "
        "or input and up to 4 cores for batches)."
    ),
]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def note_precision(runtime: Any) -> None:
    """One stderr line when the file's precision does not suit the provider running it."""
    mismatch = runtime.precision_mismatch()
    if mismatch:
        stderr.print(f"note: {mismatch}")


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
    schedule: ScheduleOpt = "none",
    warmup_steps: int = 0,
    steps: int = 2000,
    eval_every: int = 200,
    checkpoint_every: int = 200,
    sample_every: Annotated[int, typer.Option(help="Preview sample every N steps; 0 = never.")] = 0,
    valid_fraction: Annotated[float, typer.Option(help="Held-out tail of the text.")] = 0.1,
    precision: PrecisionOpt = "fp32",
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


# Options shared by the classifier trainers (train classify / sequence / add).
CellOpt = Annotated[str, typer.Option(help="rnn, gru or lstm.")]
HiddenOpt = Annotated[int, typer.Option(help="Hidden units per layer and direction.")]
LayersOpt = Annotated[int, typer.Option(help="Stacked recurrent layers.")]
BidiOpt = Annotated[bool, typer.Option(help="Bidirectional (whole-sequence graph, no streaming).")]
DropoutOpt = Annotated[float, typer.Option(help="Dropout between layers and before the head.")]
PoolingOpt = Annotated[str, typer.Option(help="last, mean, max (over real steps) or per-step.")]
StepsOpt = Annotated[int, typer.Option(help="Optimizer steps.")]
BatchOpt = Annotated[int, typer.Option(help="Sequences per batch.")]
LrOpt = Annotated[float, typer.Option(help="Peak learning rate.")]
OutOpt = Annotated[Path, typer.Option(help="Run folder: checkpoints and metrics.")]
EvalOpt = Annotated[int, typer.Option(help="Evaluate (and keep best.pt) every N steps.")]
SeedOpt = Annotated[int, typer.Option(help="Seed for weights, splits and batches.")]
ThreadsTrainOpt = Annotated[int, typer.Option(help="torch threads; 0 = torch's default.")]
ResumeOpt = Annotated[bool, typer.Option(help="Continue the run in --out from last.pt.")]
LabelNamesOpt = Annotated[
    str | None, typer.Option(help="Comma-separated class names (default: 0, 1, …).")
]


def train_classifier(options: dict[str, Any], make_sets: Any, data_info: dict[str, Any]) -> None:
    """Shared tail of the classifier trainers: config, data, fit with a progress display."""
    require_torch()
    from rnnedge.cli_render import RichTrainReporter
    from rnnedge.train.classify import ClassifierTrainConfig, fit_labelled

    config = ClassifierTrainConfig(**options, checkpoint_every=options["eval_every"])
    config.check()
    with stderr.status("reading data…"):
        train, valid = make_sets()
    fit_labelled(config, train, valid, data_info, RichTrainReporter(items="sequences"))


@train_app.command("add")
def train_add(
    bits: Annotated[int, typer.Option(help="Bits per number (sums have bits + 1).")] = 8,
    train_examples: int = 4000,
    valid_examples: int = 500,
    out: OutOpt = Path("runs/add"),
    cell: CellOpt = "rnn",
    hidden: HiddenOpt = 16,
    layers: LayersOpt = 1,
    steps: StepsOpt = 400,
    batch_size: BatchOpt = 32,
    lr: LrOpt = 0.01,
    eval_every: EvalOpt = 100,
    seed: SeedOpt = 0,
    threads: ThreadsTrainOpt = 1,
    resume: ResumeOpt = False,
) -> None:
    """Binary addition, LSB first (reference 004): trains to exact sums in seconds."""
    options = {
        k: v for k, v in locals().items() if k not in ("bits", "train_examples", "valid_examples")
    }
    options.update(out=str(out), pooling="per-step", embed_dim=0)
    from rnnedge.sources import addition_set

    train_classifier(
        options,
        lambda: (
            addition_set(train_examples, bits, seed),
            addition_set(valid_examples, bits, seed + 1),
        ),
        {"source": "add", "bits": bits},
    )


@train_app.command("sequence")
def train_sequence(
    images: Annotated[Path, typer.Option(help="IDX images (e.g. train-images-idx3-ubyte[.gz]).")],
    labels: Annotated[Path, typer.Option(help="IDX labels for --images.")],
    test_images: Annotated[
        Path | None,
        typer.Option(
            help="IDX images to validate on (default: hold out --valid-fraction of --images)."
        ),
    ] = None,
    test_labels: Annotated[Path | None, typer.Option(help="IDX labels for --test-images.")] = None,
    valid_fraction: Annotated[float, typer.Option(help="Held-out share without a test set.")] = 0.1,
    label_names: LabelNamesOpt = None,
    out: OutOpt = Path("runs/sequence"),
    cell: CellOpt = "lstm",
    hidden: HiddenOpt = 128,
    layers: LayersOpt = 1,
    bidirectional: BidiOpt = False,
    dropout: DropoutOpt = 0.0,
    pooling: PoolingOpt = "last",
    steps: StepsOpt = 3000,
    batch_size: BatchOpt = 128,
    lr: LrOpt = 2e-3,
    eval_every: EvalOpt = 500,
    schedule: ScheduleOpt = "cosine",
    precision: PrecisionOpt = "fp32",
    seed: SeedOpt = 0,
    threads: ThreadsTrainOpt = 0,
    resume: ResumeOpt = False,
) -> None:
    """Vector sequences from IDX images, each read row by row (reference 003)."""
    options = {
        k: v
        for k, v in locals().items()
        if k
        not in ("images", "labels", "test_images", "test_labels", "label_names", "valid_fraction")
    }
    options.update(out=str(out), embed_dim=0)
    names = label_names.split(",") if label_names else None
    from rnnedge.sources import idx_set, split_set

    def sets() -> tuple[Any, Any]:
        if test_images is None or test_labels is None:
            return split_set(idx_set(images, labels, names), valid_fraction, seed)
        train = idx_set(images, labels, names)
        return train, idx_set(test_images, test_labels, train.labels)

    validation = str(test_images) if test_images else f"{valid_fraction:.0%} of --images (seeded)"
    train_classifier(
        options, sets, {"source": "idx", "images": str(images), "validation": validation}
    )


@train_app.command("classify")
def train_classify(
    folders: Annotated[
        Path | None, typer.Option(help="A folder with one sub-folder per label.")
    ] = None,
    aclimdb: Annotated[
        Path | None, typer.Option(help="An aclImdb folder (train/ and test/).")
    ] = None,
    table: Annotated[Path | None, typer.Option(help="A CSV (with header) or JSONL file.")] = None,
    valid_table: Annotated[
        Path | None,
        typer.Option(help="With --table: validate on this table instead of a split of --table."),
    ] = None,
    text_column: Annotated[str, typer.Option(help="--table column holding the text.")] = "text",
    label_column: Annotated[str, typer.Option(help="--table column holding the label.")] = "label",
    tokenizer: Annotated[str, typer.Option(help="word or char.")] = "word",
    max_vocab: Annotated[int, typer.Option(help="Keep the N most frequent words.")] = 10000,
    max_len: Annotated[int, typer.Option(help="Truncate inputs to N tokens.")] = 100,
    valid_fraction: Annotated[float, typer.Option(help="Held-out share (no aclImdb test).")] = 0.1,
    out: OutOpt = Path("runs/classify"),
    cell: CellOpt = "lstm",
    embed_dim: Annotated[int, typer.Option(help="Embedding size.")] = 128,
    hidden: HiddenOpt = 128,
    layers: LayersOpt = 1,
    bidirectional: BidiOpt = False,
    dropout: DropoutOpt = 0.0,
    pooling: PoolingOpt = "last",
    steps: StepsOpt = 2000,
    batch_size: BatchOpt = 32,
    lr: LrOpt = 1e-3,
    eval_every: EvalOpt = 200,
    schedule: ScheduleOpt = "none",
    precision: PrecisionOpt = "fp32",
    seed: SeedOpt = 0,
    threads: ThreadsTrainOpt = 0,
    resume: ResumeOpt = False,
) -> None:
    """Text classification (reference 000's IMDB LSTM / BiLSTM) from folders, aclImdb or tables."""
    options = {
        k: v
        for k, v in locals().items()
        if k
        in (
            "cell",
            "embed_dim",
            "hidden",
            "layers",
            "bidirectional",
            "dropout",
            "pooling",
            "steps",
            "batch_size",
            "lr",
            "eval_every",
            "schedule",
            "precision",
            "seed",
            "threads",
            "resume",
        )
    }
    options["out"] = str(out)
    from rnnedge.sources import text_sets

    given = [(k, v) for k, v in (("folders", folders), ("aclimdb", aclimdb), ("table", table)) if v]
    if len(given) != 1:
        raise RnnedgeError("give exactly one data source: --folders, --aclimdb or --table")
    kind, path = given[0]
    source = {
        "kind": kind,
        "path": str(path),
        "text_column": text_column,
        "label_column": label_column,
    }
    test = {**source} if kind == "aclimdb" else None
    if valid_table is not None:
        if kind != "table":
            raise RnnedgeError("--valid-table goes with --table")
        test = {**source, "path": str(valid_table)}
    train_classifier(
        options,
        lambda: text_sets(source, tokenizer, max_vocab, max_len, test, valid_fraction, seed),
        {"source": source, "tokenizer": tokenizer, "max_vocab": max_vocab, "max_len": max_len},
    )


@app.command("export")
def export_command(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint from `rnnedge train` (.pt).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the .onnx.")],
    quantize: Annotated[
        str | None, typer.Option(help="int8: dynamic int8 weights, for CPU.")
    ] = None,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="fp16 inside the graph, for CUDA (I/O stays fp32).")
    ] = False,
    heldout: Annotated[
        Path | None,
        typer.Option(
            help="Held-out data for the int8/fp16 quality change: LM text (the training file: its "
            "held-out tail) or, for classifiers, a labelled table, folder, aclImdb or IDX images."
        ),
    ] = None,
    validate: Annotated[bool, typer.Option(help="Validate against torch (on by default).")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Export a checkpoint to one validated, self-describing ONNX file."""
    require_torch()
    from rnnedge.exporter import export_checkpoint

    if fp16 and quantize:
        raise InputError(f"--fp16 and --quantize {quantize} both given; pick one precision")
    with stderr.status("exporting and validating…"):
        result = export_checkpoint(
            checkpoint,
            output,
            quantize="fp16" if fp16 else quantize,
            heldout=heldout,
            run_validation=validate,
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
    seed: Annotated[int | None, typer.Option(help="Same seed, same text.")] = None,
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
    from rnnedge.runtime import SamplingConfig, load_generator
    from rnnedge.runtime.session import workload_threads

    generator = load_generator(
        model, device=device, threads=workload_threads(threads, num_streams > 1)
    )
    note_precision(generator)
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


@infer_app.command("classify")
def classify_command(
    model: Annotated[Path, typer.Argument(help="rnnedge classifier (.onnx).")],
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Texts to classify ('a+b' for the addition model).", show_default=False
        ),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="One input per line; '-' reads stdin.")
    ] = None,
    images: Annotated[Path | None, typer.Option(help="IDX images (image-row models).")] = None,
    first: Annotated[int, typer.Option(help="With --images: classify the first N.")] = 10,
    top: Annotated[int, typer.Option(help="Show the k most likely labels.")] = 1,
    stream: Annotated[
        bool, typer.Option(help="Show how the prediction evolves step by step (one input).")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="With --stream: draw per-step class probabilities to a PNG (needs matplotlib)."
        ),
    ] = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Label and probability for each input (batched), or step by step with --stream."""
    from rnnedge.runtime import load_classifier
    from rnnedge.runtime.session import workload_threads

    items, shown = classify_inputs(inputs, file, images, first)
    batched = not stream and len(items) > 1
    classifier = load_classifier(model, device=device, threads=workload_threads(threads, batched))
    note_precision(classifier)
    if stream:
        stream_one(classifier, items, shown, plot, json_out)
        return
    if top < 1:
        raise RnnedgeError(f"--top must be at least 1, got {top}")
    predictions = classifier.classify(items, top=top)
    if json_out:
        for text, prediction in zip(shown, predictions, strict=True):
            sys.stdout.write(
                json.dumps({"input": text, **prediction.to_dict()}, ensure_ascii=False) + "\n"
            )
        return
    from rnnedge.render import predictions_table

    stdout.print(predictions_table(shown, predictions))


def classify_inputs(
    inputs: list[str] | None, file: Path | None, images: Path | None, first: int
) -> tuple[list[Any], list[str]]:
    """(items for the classifier, how to show each) from arguments, a file, stdin or IDX."""
    if images is not None:
        if first < 1:
            raise RnnedgeError(f"--first must be at least 1, got {first}")
        from rnnedge.datasets import read_idx

        pixels = read_idx(images)[:first].astype("float32") / 255.0
        return list(pixels), [f"{images.name}[{i}]" for i in range(len(pixels))]
    items = list(inputs or [])
    if file is not None:
        from rnnedge.textio import read_text

        content = sys.stdin.read() if str(file) == "-" else read_text(file)
        items += [line for line in content.splitlines() if line.strip()]
    if not items:
        raise RnnedgeError(
            "nothing to classify: give inputs as arguments, --file F, --file - (stdin) or --images"
        )
    return items, items


def stream_one(
    classifier: Any, items: list[Any], shown: list[str], plot: Path | None, json_out: bool
) -> None:
    """Per-step probabilities of a single input, as bars, JSON lines or a picture."""
    import numpy as np

    if len(items) != 1:
        raise RnnedgeError(f"--stream takes exactly one input, got {len(items)}")
    if plot is not None and not plot.parent.is_dir():
        raise RnnedgeError(
            f"cannot write --plot {str(plot)!r}: its folder does not exist; create it first"
        )
    steps = np.stack(list(classifier.stream(items[0])))  # [T, C]
    if plot is not None:
        from rnnedge.render import plot_steps

        plot_steps(steps, classifier.labels, shown[0], plot)
        stderr.print(f"wrote {plot}")
    if json_out:
        for index, probs in enumerate(steps):
            sys.stdout.write(
                json.dumps(
                    {
                        "step": index + 1,
                        "probabilities": dict(
                            zip(classifier.labels, map(float, probs), strict=True)
                        ),
                    }
                )
                + "\n"
            )
        return
    from rnnedge.render import stream_lines

    for line in stream_lines(steps, classifier.labels, classifier.step_pieces(items[0])):
        stdout.print(line)


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
    text: Annotated[Path | None, typer.Option(help="LM: UTF-8 text to score.")] = None,
    tail: Annotated[
        float,
        typer.Option(
            help="LM: score only the last fraction of the file (0.1 = a 10 % "
            "held-out tail); 1 = all."
        ),
    ] = 1.0,
    folders: Annotated[Path | None, typer.Option(help="Classifier: one folder per label.")] = None,
    aclimdb: Annotated[Path | None, typer.Option(help="Classifier: aclImdb (its test/).")] = None,
    table: Annotated[Path | None, typer.Option(help="Classifier: CSV or JSONL file.")] = None,
    text_column: str = "text",
    label_column: str = "label",
    images: Annotated[Path | None, typer.Option(help="Classifier: IDX images.")] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Classifier: IDX labels for --images.")
    ] = None,
    add: Annotated[int, typer.Option(help="Addition model: score N random sums.")] = 0,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score a model with the runtime: bits/char for LMs; accuracy, macro-F1, confusion for
    classifiers."""
    from rnnedge.runtime import Generator, load
    from rnnedge.runtime.session import workload_threads

    # Scoring is batched work: many texts, or 32 slices of one text read together.
    runtime = load(model, device=device, threads=workload_threads(threads, batched=True))
    note_precision(runtime)
    began = time.perf_counter()
    if isinstance(runtime, Generator):
        metrics = evaluate_lm(runtime, text, tail)
    else:
        from rnnedge.runtime.classify import evaluate_classifier
        from rnnedge.sources import evaluation_items

        items, targets = evaluation_items(
            runtime.labels,
            runtime.preprocessing,
            folders=folders,
            aclimdb=aclimdb,
            table=table,
            text_column=text_column,
            label_column=label_column,
            images=images,
            labels=labels,
            add=add,
        )
        metrics = evaluate_classifier(runtime, items, targets)
    metrics["seconds"] = time.perf_counter() - began
    if json_out:
        print_json({"model": str(model or "default"), **metrics})
        return
    from rnnedge.render import eval_lines

    for line in eval_lines(metrics, getattr(runtime, "labels", [])):
        stdout.print(line)


def evaluate_lm(generator: Any, text: Path | None, tail: float) -> dict[str, Any]:
    from rnnedge.textio import read_text

    if text is None:
        raise RnnedgeError("--text FILE is required: the text to score")
    if not 0.0 < tail <= 1.0:
        raise RnnedgeError(f"--tail must be in (0, 1], got {tail}")
    content = read_text(text)
    metrics = generator.evaluate(content[round(len(content) * (1.0 - tail)) :])
    return {"text": str(text), "tail": tail, **metrics}


@app.command("bench")
def bench_command(
    model: ModelArg = None,
    steps: Annotated[int, typer.Option(help="Timed steps at batch 1.")] = 200,
    cold: Annotated[bool, typer.Option(help="Also time fresh-process cold starts.")] = True,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Language models: step latency, batched streams, generation, prefill, cold start.
    Classifiers: sequences/s at batch 1 and 64."""
    from rnnedge.bench import bench_classifier, bench_generator, cold_start
    from rnnedge.render import bench_table, classify_bench_table
    from rnnedge.runtime import load

    runtime = load(model, device=device, threads=threads)
    note_precision(runtime)
    with stderr.status("measuring…"):
        if runtime.task == "classification":
            report: dict[str, Any] = {"classify": bench_classifier(runtime)}
        else:
            report = bench_generator(runtime, steps=steps)
            report["cold_start"] = cold_start(model) if cold else None
        report["provider"] = runtime.provider
    if json_out:
        print_json(report)
    elif runtime.task == "classification":
        stdout.print(classify_bench_table(report))
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
