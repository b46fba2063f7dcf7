"""`rnnedge train lm|add|sequence|classify`: parse the options, build a config, fit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rnnedge.cli.common import (
    PrecisionOpt,
    ScheduleOpt,
    require_torch,
    train_app,
)
from rnnedge.render import stderr


@train_app.command("lm")
def train_lm(
    context: typer.Context,
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
    weight_dropout: Annotated[
        float,
        typer.Option(help="DropConnect on the recurrent weights while training (AWD-LSTM)."),
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
    allow_new_data: AllowNewDataOpt = False,
    init_from: Annotated[
        str,
        typer.Option(
            help="Fine-tune: start a new run from this checkpoint (its architecture, vocabulary "
            "and weights; --dropout and --weight-dropout may differ)."
        ),
    ] = "",
) -> None:
    """Train a character language model; held-out bits/char, checkpoints best.pt and last.pt."""
    options = {**locals(), "text": str(text), "out": str(out)}  # the options, one to one
    require_torch()
    from rnnedge.render import RichTrainReporter
    from rnnedge.train.lm import LMTrainConfig, fit

    fit(LMTrainConfig(**typed(options, context)), RichTrainReporter())


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
AllowNewDataOpt = Annotated[
    bool,
    typer.Option(
        help="With --resume: continue on new data the run's vocabulary covers (the held-out "
        "best restarts; the old best.pt is kept aside)."
    ),
]


def typed(options: dict[str, Any], context: typer.Context) -> dict[str, Any]:
    """`options` plus `given`: the names the user actually typed. A resume takes every other
    option from the run, and refuses a typed one that differs from it."""
    options = {k: v for k, v in options.items() if k != "context"}
    sources = {name: context.get_parameter_source(name) for name in options}
    given = tuple(
        name for name, source in sources.items() if source is not None and source.name != "DEFAULT"
    )
    return {**options, "given": given}


LabelNamesOpt = Annotated[
    str | None, typer.Option(help="Comma-separated class names (default: 0, 1, …).")
]


def train_classifier(
    options: dict[str, Any], make_sets: Any, data_info: dict[str, Any], context: typer.Context
) -> None:
    """Shared tail of the classifier trainers: config, data, fit with a progress display."""
    require_torch()
    from rnnedge.render import RichTrainReporter
    from rnnedge.train.classify import ClassifierTrainConfig, fit_labelled

    checkpoint_every = options["eval_every"]
    config = ClassifierTrainConfig(**typed(options, context), checkpoint_every=checkpoint_every)
    config.check()
    with stderr.status("reading data…"):
        train, valid = make_sets()
    fit_labelled(config, train, valid, data_info, RichTrainReporter(items="sequences"))


@train_app.command("add")
def train_add(
    context: typer.Context,
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
    allow_new_data: AllowNewDataOpt = False,
) -> None:
    """Binary addition, LSB first (the numpy RNN tutorial's task): exact sums in seconds."""
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
        context,
    )


@train_app.command("sequence")
def train_sequence(
    context: typer.Context,
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
    allow_new_data: AllowNewDataOpt = False,
    flip: Annotated[
        bool,
        typer.Option(help="Augment: mirror half the training images left-right, each batch."),
    ] = False,
) -> None:
    """Vector sequences from IDX images, each read row by row (the row-by-row MNIST tutorial)."""
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
        options,
        sets,
        {"source": "idx", "images": str(images), "validation": validation},
        context,
    )


# `train classify` options that describe its data, not the model or the run.
TEXT_DATA_OPTIONS = (
    "context",
    "folders",
    "aclimdb",
    "table",
    "valid_table",
    "text_column",
    "label_column",
    "tokenizer",
    "max_vocab",
    "max_len",
    "valid_fraction",
)


@train_app.command("classify")
def train_classify(
    context: typer.Context,
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
    ngram_max: Annotated[
        int,
        typer.Option(
            "--ngrams",
            help="Add hashed token n-grams of orders 2..N to each step's input (0 = none): "
            "cheap memory for short texts; the cell's size and speed are unchanged.",
        ),
    ] = 0,
    ngram_buckets: Annotated[
        int, typer.Option(help="Rows of each n-gram order's table (with --ngrams).")
    ] = 4096,
    ngram_dim: Annotated[
        int,
        typer.Option(help="Width of the n-gram tables' rows, projected to --embed-dim; 0 = same."),
    ] = 0,
    embed_dropout: Annotated[
        float, typer.Option(help="Dropout on each step's input (embedding and n-gram rows).")
    ] = 0.0,
    steps: StepsOpt = 2000,
    batch_size: BatchOpt = 32,
    lr: LrOpt = 1e-3,
    eval_every: EvalOpt = 200,
    schedule: ScheduleOpt = "none",
    precision: PrecisionOpt = "fp32",
    seed: SeedOpt = 0,
    threads: ThreadsTrainOpt = 0,
    resume: ResumeOpt = False,
    allow_new_data: AllowNewDataOpt = False,
) -> None:
    """Text classification (the tflearn IMDB LSTM / BiLSTM) from folders, aclImdb or tables."""
    options = {k: v for k, v in locals().items() if k not in TEXT_DATA_OPTIONS}
    options["out"] = str(out)
    from rnnedge.sources import text_sets, text_sources

    source, test = text_sources(folders, aclimdb, table, valid_table, text_column, label_column)
    train_classifier(
        options,
        lambda: text_sets(source, tokenizer, max_vocab, max_len, test, valid_fraction, seed),
        {"source": source, "tokenizer": tokenizer, "max_vocab": max_vocab, "max_len": max_len},
        context,
    )
