"""Fit a character language model on the shared training engine (train/loop.py).

Held-out evaluation reads the validation tail as contiguous streams with the state
carried, as the runtime's ``eval`` does, so the two report the same bits per character.
A resume rebuilds the model and vocabulary from the checkpoint and must read the same text
(sha256), or, with ``allow_new_data``, a text that vocabulary covers (train/resume.py).
A new run with ``init_from`` starts from another run's checkpoint (fine-tuning): its
architecture, vocabulary and weights; the optimizer, schedule and batching are this run's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from rnnedge.errors import InputError
from rnnedge.nets.language_model import CELLS, LanguageModel, LMConfig, State
from rnnedge.textio import read_text
from rnnedge.tokenizer import CharTokenizer
from rnnedge.train.checkpoint import load_checkpoint, model_config_of
from rnnedge.train.data import Split, make_batcher, require_length, split_tail
from rnnedge.train.loop import (
    KILL_AT_STEP_ENV,
    LoopConfig,
    TrainingTask,
    TrainReporter,
    file_sha256,
    prepare_runtime,
    run,
)
from rnnedge.train.resume import (
    adopt_run_config,
    char_text,
    check_steps,
    given_fields,
    on_new_data,
    previous_run,
)

LN2 = math.log(2.0)
__all__ = ["KILL_AT_STEP_ENV", "LMTrainConfig", "TrainReporter", "evaluate_bpc", "fit"]


@dataclass
class LMTrainConfig(LoopConfig):
    """Every option of ``rnnedge train lm``; saved in the checkpoint."""

    text: str = ""
    out: str = "runs/lm"
    cell: str = "lstm"
    hidden: int = 256
    layers: int = 2
    embed_dim: int = 64
    dropout: float = 0.0
    weight_dropout: float = 0.0
    batching: str = "random"
    batch_size: int = 64
    seq_len: int = 100
    valid_fraction: float = 0.1
    # A new run starts from this checkpoint's weights (architecture and vocabulary too).
    init_from: str = ""

    def check(self) -> None:
        super().check()
        if self.cell not in CELLS:
            raise InputError(f"--cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        for option, value in (("dropout", self.dropout), ("weight-dropout", self.weight_dropout)):
            if not 0.0 <= value < 1.0:
                raise InputError(f"--{option} must be in [0, 1), got {value}")

    def positive_fields(self) -> tuple[str, ...]:
        return (*super().positive_fields(), "hidden", "layers", "batch_size", "seq_len")

    def resume_may_change(self) -> tuple[str, ...]:
        # The path may move; the text itself is checked by its sha256. On new data
        # (allow_new_data) the held-out share describes the new text, so it may differ.
        new_data = ("valid_fraction",) if self.allow_new_data else ()
        return (*super().resume_may_change(), "text", *new_data)

    def model_config(self, vocab_size: int) -> LMConfig:
        """The architecture these options ask for, for a new run."""
        return LMConfig(
            vocab_size=vocab_size,
            cell=self.cell,
            hidden=self.hidden,
            layers=self.layers,
            embed_dim=self.embed_dim,
            dropout=self.dropout,
            weight_dropout=self.weight_dropout,
        )


@torch.no_grad()
def evaluate_bpc(
    model: LanguageModel,
    ids: torch.Tensor,
    device: torch.device,
    streams: int = 32,
    seq_len: int = 256,
    temperature: float = 1.0,
) -> dict[str, float]:
    """Held-out loss, perplexity and bits/char: `streams` contiguous slices, state carried.

    Each slice's first prediction has no context; with long slices that costs little and the
    runtime's ``eval`` reads text the same way, so the two agree. `temperature` divides the
    logits (a calibration being fitted: export/calibrate.py).
    """
    streams = max(1, min(streams, (len(ids) - 1) // 2))
    length = (len(ids) - 1) // streams
    inputs = ids[: streams * length].view(streams, length).to(device)  # [S, L]
    targets = ids[1 : streams * length + 1].view(streams, length).to(device)  # [S, L]
    was_training = model.training
    model.eval()
    state, total = None, 0.0
    for start in range(0, length, seq_len):
        logits, state = model(inputs[:, start : start + seq_len], state)  # [S, t, V]
        total += F.cross_entropy(
            logits.flatten(0, 1) / temperature,
            targets[:, start : start + seq_len].flatten(),
            reduction="sum",
        ).item()
    model.train(was_training)
    nats = total / inputs.numel()
    return {"loss": nats, "perplexity": math.exp(nats), "bpc": nats / LN2, "chars": inputs.numel()}


@torch.no_grad()
def sample_text(
    model: LanguageModel,
    tokenizer: CharTokenizer,
    prompt_ids: torch.Tensor,
    length: int,
    temperature: float,
    generator: torch.Generator,
) -> str:
    """A preview continuation sampled from the torch model (training-time only)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logits, state = model(prompt_ids.view(1, -1).to(device))
    out = []
    for _ in range(length):
        probs = torch.softmax(logits[0, -1].float().cpu() / temperature, dim=-1)
        token = int(torch.multinomial(probs, 1, generator=generator))
        out.append(token)
        logits, state = model(torch.tensor([[token]], device=device), state)
    model.train(was_training)
    return tokenizer.decode(out)


@dataclass
class TextData:
    """The training text as the model sees it."""

    tokenizer: CharTokenizer
    split: Split  # token ids: training part and held-out tail
    info: dict[str, Any]  # what the checkpoint and manifest record about the text
    new: bool  # a resume that continues on another text than the run's


class LanguageModelTask(TrainingTask):
    """Next-character prediction over one text, its tail held out."""

    name = "language-model"
    best_metric = "bpc"
    higher_is_better = False
    item_name = "chars"

    def __init__(
        self,
        config: LMTrainConfig,
        model_config: LMConfig,
        data: TextData,
        generator: torch.Generator,
    ) -> None:
        self.tokenizer, self.split, self.data_info = data.tokenizer, data.split, data.info
        self.model_config = model_config
        self.model = LanguageModel(model_config)
        self.batcher = make_batcher(
            config.batching, data.split.train, config.batch_size, config.seq_len, generator
        )

    def loss(
        self, batch: Any, carried: State | None, device: torch.device
    ) -> tuple[torch.Tensor, State | None, int]:
        inputs, targets, reset = batch
        state = None if reset or not self.batcher.carries_state else carried
        logits, new_state = self.model(inputs.to(device), state)  # [B, T, V]
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.to(device).flatten())
        return loss, new_state if self.batcher.carries_state else None, inputs.numel()

    def evaluate(self, device: torch.device) -> dict[str, float]:
        return evaluate_bpc(self.model, self.split.valid, device)

    def describe(self) -> dict[str, Any]:
        return {
            "model_config": self.model_config.to_dict(),
            "tokenizer": self.tokenizer.to_dict(),
            "data": self.data_info,
        }

    def info(self) -> dict[str, Any]:
        return {"vocab": len(self.tokenizer), **self.data_info}

    def sample(self, step: int) -> str:
        prompt = self.split.valid[:32]
        text = sample_text(
            self.model, self.tokenizer, prompt, 200, 0.8, torch.Generator().manual_seed(step)
        )
        return self.tokenizer.decode(prompt.tolist()) + text


def run_tokenizer(
    config: LMTrainConfig,
    resumed: dict[str, Any] | None,
    start: dict[str, Any] | None,
    text: str,
    sha256: str,
) -> tuple[CharTokenizer, bool]:
    """(vocabulary, new data?): a new run's from `text`; a resumed run's own, which must
    cover `text` when that is new data (else its characters would silently be dropped);
    a fine-tuning run's from its `start` checkpoint, which must cover `text` too."""
    if resumed:
        tokenizer = CharTokenizer.from_dict(resumed["tokenizer"])
        new = on_new_data(config, resumed, sha256, f"--text {config.text}")
        if new:
            fix = "--allow-new-data needs text the vocabulary covers: start a new --out for it"
            require_covered(tokenizer, text, config.text, fix)
        return tokenizer, new
    if start:
        tokenizer = CharTokenizer.from_dict(start["tokenizer"])
        fix = "--init-from needs text the starting model's vocabulary covers: train a new model"
        require_covered(tokenizer, text, config.text, fix)
        return tokenizer, False
    return CharTokenizer.from_text(text), False


def require_covered(tokenizer: CharTokenizer, text: str, path: str, fix: str) -> None:
    """InputError naming the first character of `text` the vocabulary lacks."""
    missing = sorted(set(text) - set(tokenizer.vocab))
    if missing:
        raise InputError(
            f"--text {path} has {len(missing)} character(s) the run's vocabulary lacks, "
            f"e.g. {char_text(missing[0])}; {fix}"
        )


def starting_checkpoint(config: LMTrainConfig, resumed: dict[str, Any] | None) -> dict | None:
    """The checkpoint a new run with --init-from starts from (None on resume or without it)."""
    if resumed or not config.init_from:
        return None
    start = load_checkpoint(config.init_from)
    if start.get("task") != "language-model":
        raise InputError(
            f"--init-from {config.init_from} is not a language-model checkpoint; "
            "give a best.pt or last.pt written by `rnnedge train lm`"
        )
    return start


def chosen_model_config(
    config: LMTrainConfig, resumed: dict | None, start: dict | None, vocab_size: int
) -> LMConfig:
    """The resumed run's architecture, the starting checkpoint's (the dropouts may be given,
    as they change training only), or a new one from the options."""
    if resumed:
        return model_config_of(LMConfig, resumed["model_config"])
    if start:
        given = given_fields(config) & {"dropout", "weight_dropout"}
        return model_config_of(
            LMConfig, {**start["model_config"], **{k: getattr(config, k) for k in given}}
        )
    return config.model_config(vocab_size)


def read_training_text(
    config: LMTrainConfig, resumed: dict[str, Any] | None, start: dict[str, Any] | None
) -> TextData:
    """Read, check against the resumed run, encode and split the training text."""
    text = read_text(config.text, "training text")
    sha256 = file_sha256(config.text)
    tokenizer, new = run_tokenizer(config, resumed, start, text, sha256)
    ids = tokenizer.with_policy("skip").encode(text)
    split = split_tail(ids, config.valid_fraction)
    require_length(split.valid, 2, "validation text", "give more text or a larger --valid-fraction")
    info = {
        "path": str(config.text),
        "sha256": sha256,
        "chars": len(ids),
        "train_chars": len(split.train),
        "valid_chars": len(split.valid),
        "valid_fraction": config.valid_fraction,
    }
    return TextData(tokenizer, split, info, new)


def fit(config: LMTrainConfig, reporter: TrainReporter | None = None) -> dict[str, Any]:
    """Train (or resume) a language model; returns the run's summary.

    A resume takes every option not given from the run, refuses given ones that differ
    (except steps and the like) and rebuilds the model from the checkpoint's model_config.
    """
    resumed = previous_run(config)
    config = adopt_run_config(config, resumed)
    check_steps(config, resumed)
    device = prepare_runtime(config)
    start = starting_checkpoint(config, resumed)
    data = read_training_text(config, resumed, start)
    model_config = chosen_model_config(config, resumed, start, len(data.tokenizer))
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    task = LanguageModelTask(config, model_config, data, generator)
    if start:
        task.model.load_state_dict(start["model"])
    return run(config, task, device, resumed, generator, reporter, new_data=data.new)
