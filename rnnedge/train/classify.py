"""Train sequence classifiers on the shared engine: text (word or char tokens), vector
sequences (IDX images read row by row) and the built-in binary-addition task.

A resume rebuilds the model from the checkpoint and needs the same prepared examples (their
sha256), or, with ``allow_new_data``, examples with the run's labels and vocabulary.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from rnnedge.errors import InputError
from rnnedge.metrics import classification_metrics
from rnnedge.nets.classifier import (
    MAX_NGRAM_VOCAB,
    POOLINGS,
    ClassifierConfig,
    SequenceClassifier,
)
from rnnedge.nets.language_model import CELLS
from rnnedge.sources import LabelledSet
from rnnedge.train.checkpoint import model_config_of
from rnnedge.train.loop import (
    LoopConfig,
    TrainingTask,
    TrainReporter,
    prepare_runtime,
    run,
)
from rnnedge.train.resume import adopt_run_config, check_steps, on_new_data, previous_run

# Orders above 5 add little for characters and a lookup per step each.
MAX_NGRAM_ORDER = 5


@dataclass
class ClassifierTrainConfig(LoopConfig):
    """Model and batching options shared by `train classify`, `train sequence`, `train add`."""

    out: str = "runs/classifier"
    cell: str = "lstm"
    hidden: int = 128
    layers: int = 1
    embed_dim: int = 64
    bidirectional: bool = False
    dropout: float = 0.0
    pooling: str = "last"
    ngram_max: int = 0
    ngram_buckets: int = 4096
    ngram_dim: int = 0
    embed_dropout: float = 0.0
    batch_size: int = 32
    lr: float = 1e-3
    # Augmentation for feature sequences: reverse each training example's feature axis with
    # probability 0.5 (for images read row by row: a left-right mirror image).
    flip: bool = False

    def check(self) -> None:
        super().check()
        if self.cell not in CELLS:
            raise InputError(f"--cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if self.pooling not in POOLINGS:
            raise InputError(
                f"--pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"--dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.embed_dropout < 1.0:
            raise InputError(f"--embed-dropout must be in [0, 1), got {self.embed_dropout}")
        if self.ngram_max == 1 or not 0 <= self.ngram_max <= MAX_NGRAM_ORDER:
            raise InputError(
                f"--ngrams must be 0 (none) or 2 to {MAX_NGRAM_ORDER}, got {self.ngram_max}"
            )
        if self.ngram_max and self.ngram_buckets < 1:
            raise InputError(f"--ngram-buckets must be at least 1, got {self.ngram_buckets}")
        if self.ngram_dim < 0:
            raise InputError(
                f"--ngram-dim must be 0 (the embedding size) or more, got {self.ngram_dim}"
            )

    def positive_fields(self) -> tuple[str, ...]:
        return (*super().positive_fields(), "hidden", "layers", "batch_size")


@dataclass
class Examples:
    """Encoded examples: per-example arrays (token ids [T] or features [T, D]) and targets."""

    inputs: list[np.ndarray]
    targets: list[np.ndarray]  # per example: a class id (shape []) or per-step ids [T]

    def __len__(self) -> int:
        return len(self.inputs)


def pad(inputs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded batch [B, T(, D)] and lengths [B]."""
    lengths = np.array([len(x) for x in inputs], dtype=np.int64)
    shape = (len(inputs), int(lengths.max()), *inputs[0].shape[1:])
    batch = np.zeros(shape, dtype=inputs[0].dtype)
    for row, x in enumerate(inputs):
        batch[row, : len(x)] = x
    return torch.from_numpy(batch), torch.from_numpy(lengths)


class ShuffledBatches:
    """Batches from a fresh permutation each epoch; its position is saved for exact resume."""

    carries_state = False

    def __init__(
        self, examples: Examples, batch: int, generator: torch.Generator, flip: bool = False
    ) -> None:
        self.examples, self.batch, self.generator = examples, min(batch, len(examples)), generator
        self.order = torch.randperm(len(examples), generator=generator)
        self.position = 0
        self.flip = flip

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.position + self.batch > len(self.order):
            self.order = torch.randperm(len(self.examples), generator=self.generator)
            self.position = 0
        rows = self.order[self.position : self.position + self.batch].tolist()
        self.position += self.batch
        inputs, lengths = pad([self.examples.inputs[r] for r in rows])
        targets = pad([np.atleast_1d(self.examples.targets[r]) for r in rows])[0]
        if self.flip:
            inputs = self.mirrored(inputs)
        return inputs, lengths, targets

    def mirrored(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs [B, T, D] with the feature axis of a random half of the rows reversed."""
        chosen = torch.rand(inputs.shape[0], generator=self.generator) < 0.5  # [B]
        return torch.where(chosen[:, None, None], inputs.flip(-1), inputs)

    def state_dict(self) -> dict:
        return {"order": self.order, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.order, self.position = state["order"], int(state["position"])


class ClassifierTask(TrainingTask):
    """Sequence classification (or per-step labelling) of prepared examples."""

    name = "classification"
    best_metric = "accuracy"
    higher_is_better = True
    item_name = "sequences"

    def __init__(
        self,
        config: ClassifierTrainConfig,
        model_config: ClassifierConfig,
        train: Examples,
        valid: Examples,
        describe: dict[str, Any],
        generator: torch.Generator,
    ) -> None:
        self.model_config, self.valid, self._describe = model_config, valid, describe
        self.model = SequenceClassifier(model_config)
        if config.flip and train.inputs[0].ndim != 2:
            raise InputError("--flip mirrors feature sequences (train sequence); drop it here")
        self.batcher = ShuffledBatches(train, config.batch_size, generator, config.flip)
        self.per_step = model_config.pooling == "per-step"

    def loss(
        self, batch: Any, carried: Any, device: torch.device
    ) -> tuple[torch.Tensor, None, int]:
        inputs, lengths, targets = (t.to(device) for t in batch)
        logits = self.model(inputs, lengths).float()
        if self.per_step:  # [B, T, C]: every real step has a target
            real = torch.arange(targets.shape[1], device=device)[None, :] < lengths[:, None]
            return F.cross_entropy(logits[real], targets[real]), None, len(lengths)
        return F.cross_entropy(logits, targets[:, 0]), None, len(lengths)

    @torch.no_grad()
    def predict(
        self, examples: Examples, device: torch.device, batch: int = 256
    ) -> list[np.ndarray]:
        predictions = []
        for start in range(0, len(examples), batch):
            inputs, lengths = pad(examples.inputs[start : start + batch])
            logits = self.model(inputs.to(device), lengths.to(device))
            for row, length in enumerate(lengths.tolist()):
                out = logits[row, :length] if self.per_step else logits[row]
                predictions.append(out.argmax(-1).cpu().numpy())
        return predictions

    def evaluate(self, device: torch.device) -> dict[str, Any]:
        predicted = self.predict(self.valid, device)
        metrics = classification_metrics(
            np.concatenate([np.atleast_1d(p) for p in predicted]),
            np.concatenate([np.atleast_1d(t) for t in self.valid.targets]),
            self.model_config.num_classes,
        )
        if self.per_step:
            metrics["exact"] = float(
                np.mean(
                    [
                        np.array_equal(p, t)
                        for p, t in zip(predicted, self.valid.targets, strict=True)
                    ]
                )
            )
        return metrics

    def describe(self) -> dict[str, Any]:
        return {"model_config": self.model_config.to_dict(), **self._describe}

    def info(self) -> dict[str, Any]:
        return {
            "train_examples": len(self.batcher.examples),
            "valid_examples": len(self.valid),
            "classes": self.model_config.num_classes,
        }


def examples_sha256(sets: list[LabelledSet]) -> str:
    """Fingerprint of prepared examples (inputs, targets, labels, vocabulary): what a text
    file's sha256 is to the language model, so a resume can tell the data changed."""
    digest = hashlib.sha256()
    for examples in sets:
        digest.update(json.dumps([examples.labels, examples.tokenizer.get("vocab")]).encode())
        for x, t in zip(examples.inputs, examples.targets, strict=True):
            x, t = np.ascontiguousarray(x), np.ascontiguousarray(t)
            # dtype and shape first, so [2, 3] and [3, 2] of the same bytes differ
            digest.update(f"{x.dtype}{x.shape}{t.dtype}{t.shape}".encode())
            digest.update(x.tobytes())
            digest.update(t.tobytes())
    return digest.hexdigest()


def labelled_model_config(config: ClassifierTrainConfig, train: LabelledSet) -> ClassifierConfig:
    """The architecture the options ask for; input kind and sizes follow from the data."""
    features = train.inputs[0].ndim == 2
    check_ngram_inputs(config, features, len(train.tokenizer.get("vocab") or []))
    return ClassifierConfig(
        num_classes=len(train.labels),
        input="features" if features else "tokens",
        vocab_size=0 if features else len(train.tokenizer["vocab"]),
        feature_dim=int(train.inputs[0].shape[1]) if features else 0,
        embed_dim=config.embed_dim,
        cell=config.cell,
        hidden=config.hidden,
        layers=config.layers,
        bidirectional=config.bidirectional,
        dropout=config.dropout,
        pooling=config.pooling,
        ngram_max=config.ngram_max,
        ngram_buckets=config.ngram_buckets if config.ngram_max else 0,
        ngram_dim=config.ngram_dim if config.ngram_max else 0,
        embed_dropout=config.embed_dropout,
    )


def check_ngram_inputs(config: ClassifierTrainConfig, features: bool, vocab_size: int) -> None:
    """n-gram inputs hash token ids: refuse them for feature inputs and huge vocabularies."""
    if not config.ngram_max:
        return
    if features:
        raise InputError("--ngrams needs token inputs (text), not feature vectors; drop it")
    if vocab_size > MAX_NGRAM_VOCAB:
        raise InputError(
            f"--ngrams carries token ids in float32 state, exact up to {MAX_NGRAM_VOCAB:,} "
            f"ids; this vocabulary has {vocab_size:,}: lower --max-vocab or drop --ngrams"
        )


def first_difference(ours: list[Any], theirs: list[Any]) -> str:
    """Where two lists first differ, in words."""
    for index, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a != b:
            return f"entry {index} is {a!r}, the run's {b!r}"
    return f"{len(ours)} entries, the run's {len(theirs)}"


def check_resumed_data(
    config: ClassifierTrainConfig,
    resumed: dict[str, Any] | None,
    model_config: ClassifierConfig,
    describe: dict[str, Any],
) -> bool:
    """Whether a resume continues on new data (allowed by `config.allow_new_data`); refuses
    data whose labels, vocabulary or shapes do not fit the run's model."""
    if not resumed:
        return False
    new = on_new_data(config, resumed, describe["data"]["sha256"], "the training data")
    pairs = (
        ("labels", describe["labels"], resumed.get("labels")),
        (
            "vocabulary",
            describe["tokenizer"].get("vocab"),
            resumed.get("tokenizer", {}).get("vocab"),
        ),
    )
    for what, ours, theirs in pairs:
        if ours != theirs:
            raise InputError(
                f"the data's {what} differ from the run's in {config.out} "
                f"({first_difference(ours or [], theirs or [])}); start a new --out for it"
            )
    for key, theirs in resumed["model_config"].items():
        ours = getattr(model_config, key, None)
        if ours != theirs:
            raise InputError(
                f"the data gives the model {key} {ours}, the run in {config.out} has {theirs}; "
                "start a new --out for it"
            )
    return new


def describe_labelled(
    train: LabelledSet, valid: LabelledSet, data_info: dict[str, Any]
) -> dict[str, Any]:
    """What the checkpoint records about the data besides the model."""
    return {
        "labels": train.labels,
        "tokenizer": train.tokenizer,
        "preprocessing": train.preprocessing,
        "data": {
            **data_info,
            "sha256": examples_sha256([train, valid]),
            "train_examples": len(train),
            "valid_examples": len(valid),
            "skipped": train.skipped + valid.skipped,
        },
    }


def fit_labelled(
    config: ClassifierTrainConfig,
    train: LabelledSet,
    valid: LabelledSet,
    data_info: dict[str, Any],
    reporter: TrainReporter | None = None,
) -> dict[str, Any]:
    """Train (or resume) a classifier on prepared sets.

    A resume takes every option not given from the run, refuses given ones that differ
    (except steps and the like) and rebuilds the model from the checkpoint's model_config.
    """
    if len(train) == 0 or len(valid) == 0:
        raise InputError("need at least one training and one validation example")
    resumed = previous_run(config)
    config = adopt_run_config(config, resumed)
    check_steps(config, resumed)
    device = prepare_runtime(config)
    model_config = labelled_model_config(config, train)
    describe = describe_labelled(train, valid, data_info)
    new_data = check_resumed_data(config, resumed, model_config, describe)
    if resumed:
        model_config = model_config_of(ClassifierConfig, resumed["model_config"])
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    sets = Examples(train.inputs, train.targets), Examples(valid.inputs, valid.targets)
    task = ClassifierTask(config, model_config, *sets, describe, generator)
    return run(config, task, device, resumed, generator, reporter, new_data=new_data)
