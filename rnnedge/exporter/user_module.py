"""Bring your own model: a user's ``torch.nn.Module`` exported to the rnnedge contract.

Two ways in, both ending in the same graphs, manifest, validation gate and precisions as
rnnedge's own models (nothing here exports by itself: graph.py, onnx_io.py, verify.py and
precision.py do the work):

- **Automatic**: the module is inspected for the common shapes (an optional
  ``nn.Embedding`` or a one-hot input, exactly one ``nn.RNN``/``nn.GRU``/``nn.LSTM``,
  optional dropout, one ``nn.Linear`` head). Its weights are copied into rnnedge's own net
  of that shape (LanguageModel or SequenceClassifier), which is what gets exported. The
  user's own ``forward`` stays the torch reference: how to call it (tokens ``[B, T]`` or
  ``[T, B]``, logits ``[B, T, V]``, ``[T, B, V]`` or flattened, plain or log-softmax) is
  found by trying each on one small input, and the validation gate then compares the
  ONNX graph with that forward at other batch sizes and lengths.
- **Protocol**: anything else exposes ``step(tokens, state) -> (logits, state)`` and
  ``state_spec`` (each state tensor's name and shape, ``"batch"`` marking the batch axis);
  rnnedge wraps it into the contract's names and batch-first layout, traces and validates.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rnnedge.atomic import write_bytes_atomic
from rnnedge.contract import LOGITS, TOKENS, Manifest, StateSpec, TensorSpec, state_names
from rnnedge.errors import InputError, ModelError, ValidationError
from rnnedge.exporter import (
    DEFAULT_SAMPLING,
    ExportResult,
    LMChecks,
    apply_provenance,
    build_manifest,
    check_quantization,
    export_provenance,
    lm_tokenizer_spec,
    measuring_device,
    model_identity,
    record_precision,
    training_summary,
    validated_lm,
    validation_prompt,
)
from rnnedge.exporter.classifier import classifier_manifest
from rnnedge.exporter.graph import export_lengths_graph, export_step_graph
from rnnedge.exporter.onnx_io import check_model, declare_shapes, with_manifest
from rnnedge.exporter.precision import reduce_precision
from rnnedge.exporter.verify import (
    FP32_TOLERANCE,
    PARITY_SHAPES,
    ROLLOUT_STEPS,
    Check,
    check_axes,
    check_batch_invariance,
    check_greedy,
    check_reduced_agreement,
    check_rollout,
    padded_batch,
    random_inputs,
    random_state,
    summarize,
    validate_reduced_classifier,
)
from rnnedge.nets.classifier import ClassifierConfig, SequenceClassifier
from rnnedge.nets.language_model import LanguageModel, LMConfig
from rnnedge.runtime.classify import Classifier
from rnnedge.runtime.generate import Generator
from rnnedge.runtime.graph import StatefulGraph
from rnnedge.runtime.session import LoadedSession, open_session
from rnnedge.tasks import input_kind
from rnnedge.textio import read_text
from rnnedge.tokenizer import CharTokenizer, WordTokenizer

TASKS = ("language-model", "classification")
PROTOCOL_HINT = (
    "give the module step(tokens, state) -> (logits, state) and state_spec "
    "(README, 'Bring your own model')"
)
CELL_NAMES = {nn.RNN: "rnn", nn.GRU: "gru", nn.LSTM: "lstm"}
RECURRENT_CELLS = {nn.RNNCell: "rnn", nn.GRUCell: "gru", nn.LSTMCell: "lstm"}
IGNORED = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity, nn.LogSoftmax)
PROBE_BATCH, PROBE_TIME = 2, 3  # unequal, so [B, T] and [T, B] cannot be confused
PROBE_TOLERANCE = 1e-4
POOLINGS = ("last", "mean", "max", "per-step")
STATE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
NativeState = tuple[torch.Tensor, ...]


# --------------------------------------------------------------------------- public API


def export_module(
    module: nn.Module,
    *,
    task: str = "language-model",
    vocabulary: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    output: str | Path = "model.onnx",
    heldout: str | Path | None = None,
    quantize: str | None = None,
    identity: dict[str, Any] | None = None,
    run_validation: bool = True,
    pooling: str = "last",
    unknown: str = "error",
    source: dict[str, Any] | None = None,
) -> Path:
    """Export a user's module to one validated contract file at `output`; its path. The
    module is put in eval mode; nothing is written unless validation passes.

    `vocabulary`: the tokens, id order (characters for a language model; characters, or
    words starting with <pad>, <unk>, for a classifier). `labels`: the classes, logit order.
    `quantize` None, 'int8' or 'fp16' needs `heldout` (LM: a text file it did not train on;
    classifier: a labelled table or folder per label) to measure the change. `pooling`
    (classifiers): how its forward reduces the steps: last, mean or max, or per-step for a
    forward giving a class at every step (protocol: last or per-step).
    `unknown`: the tokenizer's policy for characters outside the vocabulary (error, skip).
    `identity`: name, description, version, license, authors, data {source, license}.
    `source`: what to record of where the module came from (e.g. its file names).
    """
    return export_user_module(
        module,
        task,
        vocabulary,
        labels,
        output,
        heldout=heldout,
        quantize=quantize,
        identity=identity,
        run_validation=run_validation,
        pooling=pooling,
        unknown=unknown,
        source=source,
    ).path


@dataclass
class Target:
    """What the exported file must be: task, tokenizer, labels and options."""

    task: str
    tokenizer: CharTokenizer | WordTokenizer
    labels: list[str]
    pooling: str = "last"

    @property
    def classes(self) -> int:
        return len(self.tokenizer) if self.task == "language-model" else len(self.labels)


def export_user_module(
    module: nn.Module,
    task: str,
    vocabulary: Sequence[str] | None,
    labels: Sequence[str] | None,
    output: str | Path,
    heldout: str | Path | None = None,
    quantize: str | None = None,
    identity: dict[str, Any] | None = None,
    run_validation: bool = True,
    pooling: str = "last",
    unknown: str = "error",
    source: dict[str, Any] | None = None,
) -> ExportResult:
    """`export_module`, returning the manifest and size too (what the CLI shows)."""
    check_quantization(quantize)
    target = make_target(task, vocabulary, labels, pooling, unknown)
    module = module.eval()
    payload = {"data": dict(source or {}), "labels": target.labels}
    provenance = {
        "source": "user module",
        **(source or {}),
        "identity": model_identity(payload, output, identity),
    }
    if target.task == "language-model":
        model_bytes, manifest = export_language_model(
            module, target, payload, provenance, heldout, quantize, run_validation
        )
    else:
        model_bytes, manifest = export_classifier(
            module, target, payload, provenance, heldout, quantize, run_validation
        )
    write_bytes_atomic(output, model_bytes)
    return ExportResult(Path(output), manifest, len(model_bytes))


def export_module_file(
    spec: str,
    output: str | Path,
    weights: str | Path | None = None,
    vocabulary: str | Path | None = None,
    labels: str | Path | None = None,
    task: str | None = None,
    **options: Any,
) -> ExportResult:
    """The CLI's way in: build the module with ``file.py:factory`` (this runs that file:
    it is the user's own code), load `weights` (a state_dict, read with weights_only=True),
    read the vocabulary and labels files, export."""
    task = task or ("classification" if labels is not None else "language-model")
    if vocabulary is None:
        raise InputError("--module needs --vocab (the token list, one per line, id order)")
    vocab = read_entries(vocabulary, "vocabulary")
    names = read_entries(labels, "labels") if labels is not None else None
    sizes = {
        "vocab_size": len(vocab),
        "num_labels": len(names or []),
        "num_classes": len(names or []),
    }
    module = call_factory(load_factory(spec), spec, sizes)
    if weights is not None:
        load_weights(module, weights)
    source = {"module": Path(spec.rpartition(":")[0]).name + ":" + spec.rpartition(":")[2]}
    if weights is not None:
        source["weights"] = Path(weights).name
    return export_user_module(module, task, vocab, names, output, source=source, **options)


# --------------------------------------------------------------------------- loading files


def load_factory(spec: str) -> Callable[..., Any]:
    """The callable `factory` of ``path/to/file.py:factory`` (the file is executed)."""
    path_text, colon, name = spec.rpartition(":")
    if not colon or not path_text or not name.isidentifier():
        raise InputError(f"--module {spec!r}: write it as path/to/file.py:factory")
    path = Path(path_text)
    if not path.is_file():
        raise InputError(f"--module: {path_text!r} is not a file")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    loader_spec = importlib.util.spec_from_file_location(f"rnnedge_user_{digest}", path)
    if loader_spec is None or loader_spec.loader is None:
        raise InputError(f"--module: {path_text!r} cannot be loaded as Python (name it .py)")
    code = importlib.util.module_from_spec(loader_spec)
    sys.modules[loader_spec.name] = code  # dataclasses and pickling look their module up
    sys.path.insert(0, str(path.resolve().parent))  # so it can import its neighbours
    try:
        loader_spec.loader.exec_module(code)
    except Exception as exc:  # the user's code: any failure is theirs to fix
        raise InputError(f"--module: running {path_text} failed: {one_line(exc)}") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    factory = getattr(code, name, None)
    if not callable(factory):
        found = sorted(k for k, v in vars(code).items() if callable(v) and not k.startswith("_"))
        raise InputError(
            f"--module: {path_text} has no callable {name!r} (it defines {', '.join(found)})"
        )
    return factory


def call_factory(factory: Callable[..., Any], spec: str, sizes: dict[str, int]) -> nn.Module:
    """`factory()`, given vocab_size / num_labels / num_classes when it asks for them."""
    kwargs: dict[str, int] = {}
    for parameter in inspect.signature(factory).parameters.values():
        if parameter.name in sizes:
            kwargs[parameter.name] = sizes[parameter.name]
        elif parameter.default is inspect.Parameter.empty and parameter.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            raise InputError(
                f"--module {spec}: the factory needs {parameter.name!r}; rnnedge calls it with "
                f"no arguments, or with {', '.join(sizes)} when it asks for them by name"
            )
    try:
        module = factory(**kwargs)
    except Exception as exc:
        raise InputError(f"--module {spec}: the factory failed: {one_line(exc)}") from None
    if not isinstance(module, nn.Module):
        raise InputError(
            f"--module {spec}: the factory returned a {type(module).__name__}, "
            "not a torch.nn.Module"
        )
    return module


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load a state_dict saved with ``torch.save(model.state_dict(), path)`` into `module`."""
    if not Path(path).is_file():
        raise InputError(f"--weights {str(path)!r} does not exist; check the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(
            f"--weights {str(path)!r} cannot be read as a state_dict ({one_line(exc)[:200]})"
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise InputError(
            f"--weights {str(path)!r} holds a {type(state).__name__}, not a state_dict; save it "
            "with torch.save(model.state_dict(), path)"
        )
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = [
        f"{k} {list(state[k].shape)} (the module's is {list(expected[k].shape)})"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or extra or wrong:
        problems = [("missing", missing), ("unexpected", extra), ("wrong shape", wrong)]
        raise InputError(
            f"--weights {str(path)!r} does not fit the module ("
            + "; ".join(f"{what}: {', '.join(keys[:3])}" for what, keys in problems if keys)
            + "): does the factory build the same model, for the same --vocab / --labels?"
        )
    module.load_state_dict(state)


def read_entries(path: str | Path, what: str) -> list[str]:
    """A vocabulary or label list: a JSON array, or one entry per line exactly as written
    (nothing trimmed); a line starting with a backslash is an escape (\\n, \\t, \\\\, \\u4e00)."""
    text = read_text(path, what)
    if str(path).endswith(".json"):
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{what} {str(path)!r} is not valid JSON ({exc.msg})") from None
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise InputError(f"{what} {str(path)!r} must be a JSON array of strings")
        return entries
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    try:
        return [
            line.encode("latin-1", "backslashreplace").decode("unicode_escape")
            if line.startswith("\\")
            else line
            for line in lines
        ]
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {str(path)!r} has a bad escape ({exc.reason})") from None


def one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


# --------------------------------------------------------------------------- target


def make_target(
    task: str,
    vocabulary: Sequence[str] | None,
    labels: Sequence[str] | None,
    pooling: str,
    unknown: str,
) -> Target:
    """Task, tokenizer and labels checked: one line naming what is wrong."""
    if task not in TASKS:
        raise InputError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    if not vocabulary:
        raise InputError("give the vocabulary: the tokens the module reads, in id order")
    vocab = list(vocabulary)
    if task == "language-model":
        if labels:
            raise InputError("a language model predicts its vocabulary: give no labels")
        long = next((e for e in vocab if len(e) != 1), None)
        if long is not None:
            raise InputError(
                f"a language model's vocabulary is characters, one per entry; {long!r} is not one"
            )
        return Target(task, CharTokenizer(vocab, unknown=unknown), [])
    if not labels or len(labels) < 2:
        raise InputError("a classifier needs its labels (at least two), in logit order")
    if pooling not in POOLINGS:
        raise InputError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
    if all(len(e) == 1 for e in vocab):
        tokenizer: CharTokenizer | WordTokenizer = CharTokenizer(vocab, unknown=unknown)
    else:
        tokenizer = WordTokenizer(vocab)  # refuses a vocabulary without <pad>, <unk> first
    return Target(task, tokenizer, [str(x) for x in labels], pooling)


# --------------------------------------------------------------------------- inspection


@dataclass
class Parts:
    """The submodules the automatic path found, by attribute path."""

    rnn_name: str
    rnn: nn.RNNBase
    head_name: str
    head: nn.Linear
    embedding_name: str | None = None
    embedding: nn.Embedding | None = None

    @property
    def cell(self) -> str:
        return CELL_NAMES[type(self.rnn)]

    @property
    def directions(self) -> int:
        return 2 if self.rnn.bidirectional else 1

    def describe(self) -> str:
        first = f"Embedding {self.embedding_name!r}" if self.embedding else "one-hot input"
        return (
            f"{first} → {'bidirectional ' if self.rnn.bidirectional else ''}"
            f"{type(self.rnn).__name__} {self.rnn_name!r} ({self.rnn.num_layers} × "
            f"{self.rnn.hidden_size}) → Linear {self.head_name!r}"
        )


def not_understood(name: str, why: str) -> InputError:
    return InputError(
        f"automatic export does not understand {name}: {why}. It reads an optional Embedding "
        "(or one-hot input), one nn.RNN/GRU/LSTM, optional Dropout and one Linear head; for "
        f"anything else {PROTOCOL_HINT}"
    )


KNOWN = (nn.Embedding, nn.RNNBase, nn.Linear)


def sort_submodules(module: nn.Module) -> dict[type, list[tuple[str, nn.Module]]]:
    """The module's Embedding, RNN and Linear layers by kind; an error naming the first
    other layer with weights or computation (dropout and containers are fine) or a weight
    held outside any layer (e.g. a learned initial state)."""
    found: dict[type, list[tuple[str, nn.Module]]] = {kind: [] for kind in KNOWN}
    for name, child in module.named_modules():
        if isinstance(child, KNOWN):
            if type(child) not in (nn.Embedding, nn.Linear, *CELL_NAMES):
                raise not_understood(f"submodule {name!r}", f"{type(child).__name__} is a subclass")
            kind = nn.RNNBase if isinstance(child, nn.RNNBase) else type(child)
            found[kind].append((name, child))
        elif not list(child.children()) and not isinstance(child, IGNORED) and name:
            raise not_understood(f"submodule {name!r}", f"a {type(child).__name__} layer")
        else:
            for owned, _ in child.named_parameters(recurse=False):
                where = f"{name}.{owned}" if name else owned
                raise not_understood(f"parameter {where!r}", "a weight outside the known layers")
    return found


def find_parts(module: nn.Module) -> Parts:
    """Embedding, recurrent layer and head of `module`, or an error naming the first
    submodule or attribute that does not fit the common shapes."""
    found = sort_submodules(module)
    for kind, wanted, allowed in ((nn.Embedding, 0, 1), (nn.RNNBase, 1, 1), (nn.Linear, 1, 1)):
        items = found[kind]
        if not (wanted <= len(items) <= allowed):
            what = "nn.RNN/GRU/LSTM" if kind is nn.RNNBase else kind.__name__
            names = ", ".join(repr(n) for n, _ in items) or "none"
            raise not_understood(
                f"the {what} layers ({names})",
                f"expected exactly {allowed}" if wanted else "expected at most one",
            )
    (rnn_name, rnn), (head_name, head) = found[nn.RNNBase][0], found[nn.Linear][0]
    embedding_name, embedding = found[nn.Embedding][0] if found[nn.Embedding] else (None, None)
    return Parts(rnn_name, rnn, head_name, head, embedding_name, embedding)  # type: ignore[arg-type]


def check_parts(parts: Parts, target: Target) -> None:
    """Attributes of the found layers that rnnedge's nets cannot reproduce, or sizes that
    do not fit the vocabulary and labels."""
    rnn, name, vocab = parts.rnn, parts.rnn_name, len(target.tokenizer)
    if getattr(rnn, "nonlinearity", "tanh") != "tanh":
        raise not_understood(f"{name}.nonlinearity", f"{rnn.nonlinearity!r} (rnnedge runs tanh)")
    if getattr(rnn, "proj_size", 0):
        raise not_understood(f"{name}.proj_size", f"{rnn.proj_size} (LSTM projections)")
    if parts.embedding is not None:
        emb = parts.embedding
        if emb.max_norm is not None:
            raise not_understood(f"{parts.embedding_name}.max_norm", "renormalised lookups")
        expect(
            emb.num_embeddings == vocab,
            f"{parts.embedding_name}.num_embeddings is {emb.num_embeddings}, "
            f"the vocabulary has {vocab} entries",
        )
        expect(
            rnn.input_size == emb.embedding_dim,
            f"{name}.input_size {rnn.input_size} ≠ "
            f"{parts.embedding_name}.embedding_dim {emb.embedding_dim}",
        )
    else:
        expect(
            rnn.input_size == vocab,
            f"{name}.input_size is {rnn.input_size}: with no Embedding the input must be "
            f"one-hot over the {vocab}-entry vocabulary",
        )
    width = rnn.hidden_size * parts.directions
    expect(
        parts.head.in_features == width,
        f"{parts.head_name}.in_features {parts.head.in_features} ≠ {name}'s output width {width}",
    )
    expect(
        parts.head.out_features == target.classes,
        f"{parts.head_name}.out_features is {parts.head.out_features}, the "
        f"{'vocabulary' if target.task == 'language-model' else 'label list'} "
        f"has {target.classes}",
    )
    if target.task == "language-model" and rnn.bidirectional:
        raise InputError(
            f"automatic export: {name!r} is bidirectional, and a language model that reads the "
            "text backwards too cannot generate it; export it as a classifier, or train a "
            "unidirectional one"
        )


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(f"automatic export: {message}")


# --------------------------------------------------------------------------- rebuilding


def recurrent_weights(
    rnn: nn.RNNBase, layer: int, reverse: bool, prefix: str
) -> dict[str, torch.Tensor]:
    """One layer and direction of `rnn` as a single-layer RNN's (or a stack's layer
    `prefix`) tensors; a layer built without bias gets zero biases (the same maths)."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[CELL_NAMES[type(rnn)]] * rnn.hidden_size
    tensors = {}
    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        value = getattr(rnn, kind + suffix) if rnn.bias or kind.startswith("weight") else None
        tensors[prefix.format(kind)] = (
            torch.zeros(gates) if value is None else value.detach().float().clone()
        )
    return tensors


def head_weights(parts: Parts) -> dict[str, torch.Tensor]:
    head = parts.head
    bias = head.bias if head.bias is not None else torch.zeros(head.out_features)
    return {"head.weight": head.weight.detach().float(), "head.bias": bias.detach().float()}


def rebuild_language_model(parts: Parts, target: Target) -> LanguageModel:
    """rnnedge's LanguageModel holding the user's weights."""
    rnn = parts.rnn
    config = LMConfig(
        vocab_size=len(target.tokenizer),
        cell=parts.cell,
        hidden=rnn.hidden_size,
        layers=rnn.num_layers,
        embed_dim=parts.embedding.embedding_dim if parts.embedding is not None else 0,
        dropout=float(rnn.dropout),
    )
    weights = head_weights(parts)
    if parts.embedding is not None:
        weights["embedding.weight"] = parts.embedding.weight.detach().float()
    for layer in range(rnn.num_layers):
        weights.update(recurrent_weights(rnn, layer, False, "rnn.{}" + f"_l{layer}"))
    model = LanguageModel(config)
    model.load_state_dict(weights)
    return model.eval()


def rebuild_classifier(parts: Parts, target: Target) -> SequenceClassifier:
    """rnnedge's SequenceClassifier holding the user's weights; a one-hot input becomes an
    identity embedding (the same maths). Bidirectional layers split into one RNN per
    direction, the backward one fed each sequence reversed within its length."""
    rnn, vocab = parts.rnn, len(target.tokenizer)
    config = ClassifierConfig(
        num_classes=len(target.labels),
        vocab_size=vocab,
        embed_dim=parts.embedding.embedding_dim if parts.embedding is not None else vocab,
        cell=parts.cell,
        hidden=rnn.hidden_size,
        layers=rnn.num_layers,
        bidirectional=rnn.bidirectional,
        dropout=float(rnn.dropout),
        pooling=target.pooling,
    )
    weights = head_weights(parts)
    weights["embedding.weight"] = (
        parts.embedding.weight.detach().float() if parts.embedding is not None else torch.eye(vocab)
    )
    for layer in range(rnn.num_layers):
        if rnn.bidirectional:
            weights.update(recurrent_weights(rnn, layer, False, f"forward_layers.{layer}.{{}}_l0"))
            weights.update(recurrent_weights(rnn, layer, True, f"backward_layers.{layer}.{{}}_l0"))
        else:
            weights.update(recurrent_weights(rnn, layer, False, "rnn.{}" + f"_l{layer}"))
    model = SequenceClassifier(config)
    model.load_state_dict(weights)
    return model.eval()


# --------------------------------------------------------------------------- calling forward


@dataclass(frozen=True)
class Convention:
    """How the user's forward is called and what it returns."""

    time_major: bool  # reads tokens [T, B] (else [B, T])
    layout: str  # its logits: "BTC", "TBC", "(B*T)C", "(T*B)C" or "BC" (one row per input)
    log_softmax: bool  # returns log-probabilities rather than logits
    takes_state: bool

    def describe(self) -> str:
        tokens = "[T, B]" if self.time_major else "[B, T]"
        state = ", state) -> (" if self.takes_state else ") -> ("
        out = "log_softmax " if self.log_softmax else ""
        return f"forward(tokens {tokens}{state}{out}logits {self.layout})"


def to_btc(logits: torch.Tensor, layout: str, batch: int, time: int) -> torch.Tensor:
    """The user's logits in the contract's [B, T, C] (or [B, C] for pooled outputs)."""
    if layout == "TBC":
        return logits.transpose(0, 1)
    if layout == "(B*T)C":
        return logits.reshape(batch, time, -1)
    if layout == "(T*B)C":
        return logits.reshape(time, batch, -1).transpose(0, 1)
    return logits


def layouts_for(shape: torch.Size, batch: int, time: int, classes: int, pooled: bool) -> list[str]:
    """The logits layouts an output of `shape` can be."""
    if pooled:
        return ["BC"] if tuple(shape) == (batch, classes) else []
    candidates = {
        "BTC": (batch, time, classes),
        "TBC": (time, batch, classes),
        "(B*T)C": (batch * time, classes),
        "(T*B)C": (batch * time, classes),
    }
    return [name for name, want in candidates.items() if tuple(shape) == want]


def split_output(output: Any) -> tuple[torch.Tensor, NativeState | None]:
    """(logits, state) from whatever forward returned: a tensor, or a tuple whose first item
    is the logits and second (if any) the state (a tensor, or a tuple such as LSTM's)."""
    if isinstance(output, torch.Tensor):
        return output, None
    if not isinstance(output, (tuple, list)) or not isinstance(output[0], torch.Tensor):
        raise InputError(
            f"automatic export: forward returned a {type(output).__name__}; it must return "
            f"logits or (logits, state); otherwise {PROTOCOL_HINT}"
        )
    if len(output) < 2 or output[1] is None:
        return output[0], None
    state = output[1]
    return output[0], (state,) if isinstance(state, torch.Tensor) else tuple(state)


class UserReference:
    """The user's module called by its own convention, seen in the contract's terms:
    tokens [B, T], state in torch's native [layers*dirs, B, H], logits [B, T, C]. This is the
    torch reference of the validation gate (verify.torch_run, greedy_torch)."""

    def __init__(self, user: nn.Module, convention: Convention, config: Any, cell: str) -> None:
        self.user, self.convention, self.config, self.cell = user, convention, config, cell

    def call(self, tokens: torch.Tensor, state: NativeState | None) -> Any:
        x = tokens.transpose(0, 1).contiguous() if self.convention.time_major else tokens
        if not self.convention.takes_state:
            return self.user(x)
        native = tuple(state) if self.cell == "lstm" else state[0]  # type: ignore[index]
        return self.user(x, native)

    def forward_steps(
        self, tokens: torch.Tensor, state: NativeState
    ) -> tuple[torch.Tensor, NativeState]:
        # tokens [B, T]; state ([L*D, B, H],) or (h, c) -> logits [B, T, C], state
        with torch.no_grad():
            logits, new_state = split_output(self.call(tokens, state))
            return to_btc(logits, self.convention.layout, *tokens.shape), new_state or ()

    def __call__(
        self, tokens: torch.Tensor, state: NativeState | None = None
    ) -> tuple[torch.Tensor, NativeState]:
        if state is None:
            shape = (self.config.layers, tokens.shape[0], self.config.hidden)
            state = tuple(torch.zeros(shape) for _ in range(2 if self.cell == "lstm" else 1))
        return self.forward_steps(tokens, state)

    def pooled(self, tokens: np.ndarray) -> np.ndarray:
        """A classifier's forward on tokens [B, T] → logits [B, C] (numpy)."""
        with torch.no_grad():
            logits, _ = split_output(self.call(torch.from_numpy(tokens), None))
            return to_btc(logits, self.convention.layout, *tokens.shape).float().numpy()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float((a.float() - b.float()).abs().max())


def match_convention(
    output: Any,
    expected: tuple[torch.Tensor, NativeState],
    time_major: bool,
    takes_state: bool,
    classes: int,
) -> tuple[Convention | None, float]:
    """The convention under which `output` equals `expected` (logits [B, T, C] or [B, C],
    state), and the closest difference seen."""
    logits, state = split_output(output)
    want_logits, want_state = expected
    batch, time = PROBE_BATCH, PROBE_TIME
    pooled = want_logits.dim() == 2
    best = float("inf")
    for layout in layouts_for(logits.shape, batch, time, classes, pooled):
        mine = to_btc(logits, layout, batch, time)
        for log_softmax in (False, True):
            reference = F.log_softmax(want_logits, -1) if log_softmax else want_logits
            diffs = [max_diff(mine, reference)]
            if want_state:
                given = state or ()
                diffs += [max_diff(a, b) for a, b in zip(given, want_state, strict=False)]
                diffs += [] if len(given) == len(want_state) else [float("inf")]
            best = min(best, max(diffs))
            if max(diffs) <= PROBE_TOLERANCE:
                return Convention(time_major, layout, log_softmax, takes_state), best
    return None, best


def probe_inputs(target: Target, parts: Parts, lm: bool) -> tuple[torch.Tensor, NativeState | None]:
    """Random tokens [B, T] and (language models) a random native state for the probe."""
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, len(target.tokenizer), (PROBE_BATCH, PROBE_TIME), generator=generator)
    if not lm:
        return tokens, None
    rnn = parts.rnn
    shape = (rnn.num_layers, PROBE_BATCH, rnn.hidden_size)
    count = 2 if parts.cell == "lstm" else 1
    return tokens, tuple(0.5 * torch.randn(shape, generator=generator) for _ in range(count))


def find_convention(
    user: nn.Module, rebuilt: nn.Module, parts: Parts, target: Target
) -> Convention:
    """How to call the user's forward so that it computes what `rebuilt` computes; an error
    naming the failure or the closest difference when no way does."""
    lm = target.task == "language-model"
    tokens, state = probe_inputs(target, parts, lm)
    with torch.no_grad():
        if lm:
            expected = rebuilt(tokens, state)
        else:
            lengths = torch.full((PROBE_BATCH,), PROBE_TIME, dtype=torch.int64)
            expected = (rebuilt(tokens, lengths), ())
        failures, closest, shapes = [], float("inf"), []
        for time_major in (False, True):
            reference = UserReference(user, Convention(time_major, "", False, lm), None, parts.cell)
            try:
                output = reference.call(tokens, state)
            except Exception as exc:  # the user's code: report what it raised
                failures.append(f"tokens {'[T, B]' if time_major else '[B, T]'}: {one_line(exc)}")
                continue
            convention, diff = match_convention(output, expected, time_major, lm, target.classes)
            if convention is not None:
                return convention
            closest, shapes = min(closest, diff), [*shapes, list(split_output(output)[0].shape)]
    raise convention_error(user, parts, target, failures, closest, shapes)


def convention_error(
    user: nn.Module,
    parts: Parts,
    target: Target,
    failures: list[str],
    closest: float,
    shapes: list[list[int]],
) -> InputError:
    """Why no way of calling the user's forward matched its layers, in one line."""
    lm = target.task == "language-model"
    call = f"{type(user).__name__}.forward(tokens{', state' if lm else ''})"
    if len(failures) == 2:
        return InputError(
            f"automatic export: calling {call} failed ({failures[0]}); {PROTOCOL_HINT}"
        )
    b, t, c = PROBE_BATCH, PROBE_TIME, target.classes
    pooled = not lm and target.pooling != "per-step"
    wanted = (
        f"[B, C] = [{b}, {c}]"
        if pooled
        else f"[B, T, C] = [{b}, {t}, {c}] (or [T, B, C], [B*T, C])"
    )
    if closest == float("inf"):
        return InputError(
            f"automatic export: {call} returned logits shaped {shapes[0]} for {b} inputs of "
            f"{t} tokens; expected {wanted}"
            + (
                " (--pooling per-step / pooling='per-step' for a class at every step)"
                if pooled
                else ""
            )
            + f"; otherwise {PROTOCOL_HINT}"
        )
    return InputError(
        f"automatic export: {call} does not compute what its layers do as {parts.describe()} "
        f"(closest: logits or state off by {closest:.3g} over tokens [B, T] / [T, B], logits "
        f"[B, T, C] / [T, B, C] / flattened, plain or log_softmax"
        + (f", pooled '{target.pooling}' (--pooling / pooling= says how)" if not lm else "")
        + f"); for a forward that does more, {PROTOCOL_HINT}"
    )


# --------------------------------------------------------------------------- protocol


@dataclass
class StateTensor:
    """One state tensor of a protocol module: its name, the user's shape with the batch axis
    at `batch_axis`, and its contract shape [batch, rows, width]."""

    name: str
    shape: tuple[int, ...]  # the user's shape without the batch axis
    batch_axis: int

    @property
    def rows_width(self) -> tuple[int, int]:
        return (1, self.shape[0]) if len(self.shape) == 1 else (self.shape[0], self.shape[1])


def parse_state_spec(module: nn.Module) -> list[StateTensor]:
    """The module's ``state_spec`` (a list of (name, shape) pairs or a dict name → shape, the
    string "batch" marking the batch axis; a method returning one also works), checked."""
    spec = getattr(module, "state_spec", None)
    spec = spec() if callable(spec) else spec
    if spec is None:
        raise InputError(f"{type(module).__name__} has step() but no state_spec; {PROTOCOL_HINT}")
    pairs = list(spec.items()) if isinstance(spec, Mapping) else list(spec)
    states = []
    for entry in pairs:
        name, shape = (
            entry if isinstance(entry, (tuple, list)) and len(entry) == 2 else (entry, None)
        )
        if not isinstance(name, str) or not STATE_NAME.match(name):
            raise InputError(
                f"state_spec: {name!r} is not a state name (lower-case letters, digits, _)"
            )
        dims = list(shape) if isinstance(shape, (tuple, list)) else []
        sizes = [d for d in dims if d != "batch"]
        if (
            dims.count("batch") != 1
            or not all(isinstance(d, int) and d > 0 for d in sizes)
            or not 1 <= len(sizes) <= 2
        ):
            raise InputError(
                f"state_spec: {name!r} has shape {shape!r}; give its shape with 'batch' once and "
                "one or two positive sizes, e.g. ('batch', 64) or (2, 'batch', 64)"
            )
        states.append(StateTensor(name, tuple(sizes), dims.index("batch")))
    if not states or len({s.name for s in states}) != len(states):
        raise InputError("state_spec must name at least one state tensor, each once")
    return states


class ProtocolNet(nn.Module):
    """A protocol module in the step graph's terms: ``forward_steps(tokens [B, T], states
    [rows, B, width] each)`` → (logits [B, T, C], states). The batch-first contract layout
    is StepGraph's transpose away; here each state goes to and from the user's own shape."""

    def __init__(self, user: nn.Module, states: list[StateTensor], target: Target) -> None:
        super().__init__()
        self.user, self.states = user, states
        self.config = SimpleNamespace(input="tokens", vocab_size=len(target.tokenizer))

    def state_keys(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    def initial_state(self, batch: int, device: torch.device | None = None) -> NativeState:
        # [rows, B, width] each: the step graph's native layout
        return tuple(
            torch.zeros((s.rows_width[0], batch, s.rows_width[1]), device=device)
            for s in self.states
        )

    def forward_steps(
        self, tokens: torch.Tensor, state: NativeState
    ) -> tuple[torch.Tensor, NativeState]:
        # tokens [B, T]; each state [rows, B, width] -> the user's shape, batch where it says
        batch = tokens.shape[0]
        theirs = tuple(
            s.transpose(0, 1).reshape(batch, *spec.shape).movedim(0, spec.batch_axis)
            for s, spec in zip(state, self.states, strict=True)
        )
        logits, new_state = self.user.step(tokens, theirs)
        ours = tuple(
            s.movedim(spec.batch_axis, 0).reshape(batch, *spec.rows_width).transpose(0, 1)
            for s, spec in zip(new_state, self.states, strict=True)
        )
        return logits, ours

    def forward(
        self, tokens: torch.Tensor, state: NativeState | None = None
    ) -> tuple[torch.Tensor, NativeState]:
        return self.forward_steps(tokens, state or self.initial_state(tokens.shape[0]))


def check_protocol(net: ProtocolNet, target: Target) -> None:
    """One call of step() on a small batch: its logits [B, T, C] and states in the shapes
    state_spec gives, or one line saying what came back instead."""
    tokens = torch.zeros((PROBE_BATCH, PROBE_TIME), dtype=torch.int64)
    theirs = tuple(
        torch.zeros((*s.shape[: s.batch_axis], PROBE_BATCH, *s.shape[s.batch_axis :]))
        for s in net.states
    )
    try:
        with torch.no_grad():
            output = net.user.step(tokens, theirs)
    except Exception as exc:
        raise InputError(f"protocol: step(tokens [B, T], state) failed: {one_line(exc)}") from None
    if not (isinstance(output, (tuple, list)) and len(output) == 2):
        raise InputError("protocol: step() must return (logits, state)")
    logits, state = output
    want = (PROBE_BATCH, PROBE_TIME, target.classes)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != want:
        got = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InputError(
            f"protocol: step() returned logits {got}; expected [B, T, C] = {list(want)}"
        )
    shapes = [tuple(t.shape) for t in theirs]
    if not isinstance(state, (tuple, list)) or [tuple(s.shape) for s in state] != shapes:
        raise InputError(
            f"protocol: step() must return its state as a tuple shaped like state_spec: {shapes}"
        )


def protocol_architecture(module: nn.Module, states: list[StateTensor]) -> dict[str, Any]:
    """What the manifest says of a protocol module: its recurrent cell (from its layers, or
    an ``rnnedge_cell`` attribute), layers and hidden size as found, ``graph: protocol``."""
    layers = [m for m in module.modules() if isinstance(m, (nn.RNNBase, nn.RNNCellBase))]
    kinds = {CELL_NAMES.get(type(m)) or RECURRENT_CELLS.get(type(m)) for m in layers}
    given = getattr(module, "rnnedge_cell", None)
    cell = given if isinstance(given, str) else (kinds.pop() if len(kinds) == 1 else None)
    if cell not in ("rnn", "gru", "lstm"):
        raise InputError(
            f"protocol: cannot tell {type(module).__name__}'s cell "
            f"(found {sorted(map(str, kinds))}); "
            "give the module an attribute rnnedge_cell = 'rnn', 'gru' or 'lstm'"
        )
    return {
        "cell": cell,
        "layers": sum(getattr(m, "num_layers", 1) for m in layers) or len(states),
        "hidden": max(s.rows_width[1] for s in states),
        "bidirectional": False,
        "input": "tokens",
        "graph": "protocol",
        "states": {s.name: list(s.shape) for s in states},
        "parameters": sum(p.numel() for p in module.parameters()),
    }


# --------------------------------------------------------------------------- manifests


def protocol_manifest(
    target: Target, module: nn.Module, states: list[StateTensor], payload: dict[str, Any]
) -> Manifest:
    """The manifest of a protocol module's step graph: tokens and states batch-first."""
    state_in, state_out = state_names(tuple(s.name for s in states))
    shapes: list[list[int | str]] = [["batch", *s.rows_width] for s in states]
    lm = target.task == "language-model"
    architecture = protocol_architecture(module, states)
    if not lm and target.pooling not in ("last", "per-step"):
        raise InputError(
            f"protocol: step() gives logits after every step, so pooling is last (the answer "
            f"after the last step) or per-step, not {target.pooling!r}"
        )
    if not lm:
        architecture["pooling"] = target.pooling
    return Manifest(
        task=target.task,
        architecture=architecture,
        tokenizer=lm_tokenizer_spec(target.tokenizer) if lm else target.tokenizer.to_dict(),  # type: ignore[arg-type]
        inputs=[TensorSpec(TOKENS, "int64", ["batch", "time"])]
        + [TensorSpec(n, "float32", s) for n, s in zip(state_in, shapes, strict=True)],
        outputs=[TensorSpec(LOGITS, "float32", ["batch", "time", target.classes])]
        + [TensorSpec(n, "float32", s) for n, s in zip(state_out, shapes, strict=True)],
        states=[StateSpec(i, o, s) for i, o, s in zip(state_in, state_out, shapes, strict=True)],
        labels=target.labels,
        preprocessing={} if lm else dict(payload["preprocessing"]),
        sampling=dict(DEFAULT_SAMPLING) if lm else {},
        training=training_summary(payload),
        export=export_provenance(),
    )


def describe_source(manifest: Manifest, module: nn.Module, how: str) -> None:
    """Say in the manifest that the model is the user's, which class, and how it was read."""
    manifest.architecture.update({"source": "user module", "module": type(module).__name__})
    manifest.architecture.setdefault("graph", how)
    manifest.architecture["read_as"] = how
    # Nothing is known of the training but what the caller said (module and weights files).
    manifest.training = {"trained_by": "the user's own code", **manifest.training["data"]}


# --------------------------------------------------------------------------- validation


def normalized(reference: Any, logits: np.ndarray) -> np.ndarray:
    """ORT's logits as the reference returns them: log-probabilities for a forward that ends
    in log_softmax (the same predictions, a per-row constant apart)."""
    convention = getattr(reference, "convention", None)
    if convention is not None and convention.log_softmax:
        return F.log_softmax(torch.from_numpy(logits), -1).numpy()
    return logits


def worse(worst: dict[str, Any], tensor: str, diff: float, batch: int, time: int) -> None:
    if diff > worst["max_abs_diff"]:
        worst.update(max_abs_diff=diff, tensor=tensor, batch=batch, time=time)


def check_named_parity(reference: Any, runtime: StatefulGraph, rng: np.random.Generator) -> Check:
    """The user's module (torch) vs the graph (ORT) from random states at batch sizes and
    lengths other than the traced ones; the worst tensor is named with its difference."""
    worst: dict[str, Any] = {"max_abs_diff": 0.0, "tensor": LOGITS, "batch": 0, "time": 0}
    for batch, time in PARITY_SHAPES:
        tokens = random_inputs(reference, batch, time, rng)
        state = random_state(runtime, batch, rng)
        ort_logits, ort_state = runtime.run(tokens, state)
        with torch.no_grad():
            native = tuple(torch.from_numpy(s).transpose(0, 1) for s in state.values())
            ref_logits, ref_state = reference.forward_steps(torch.from_numpy(tokens), native)
        ref_logits = ref_logits.numpy()
        diff = float(np.abs(normalized(reference, ort_logits) - ref_logits).max())
        worse(worst, LOGITS, diff, batch, time)
        for spec, ref in zip(runtime.manifest.states, ref_state, strict=True):
            ours = ort_state[spec.input]
            diff = float(np.abs(ours - ref.transpose(0, 1).numpy()).max())
            worse(worst, spec.output, diff, batch, time)
    return Check(
        "parity", worst["max_abs_diff"] <= FP32_TOLERANCE, {**worst, "tolerance": FP32_TOLERANCE}
    )


def check_pooled_parity(
    reference: UserReference, model: nn.Module, runtime: Classifier, rng: np.random.Generator
) -> Check:
    """The user's classifier forward (torch, each input alone) vs the graph (ORT) at other
    batch sizes and lengths, and on a padded batch of mixed lengths."""
    worst: dict[str, Any] = {"max_abs_diff": 0.0, "tensor": LOGITS, "batch": 0, "time": 0}
    for batch, time in PARITY_SHAPES:
        tokens = random_inputs(model, batch, time, rng)
        ours = np.stack(runtime.padded_logits(list(tokens)))  # [B, C] or [B, T, C]
        diff = float(np.abs(normalized(reference, ours) - reference.pooled(tokens)).max())
        worse(worst, LOGITS, diff, batch, time)
    tokens, lengths = padded_batch(model, rng)
    rows = [tokens[row, :length] for row, length in enumerate(lengths)]
    ours = [normalized(reference, x) for x in runtime.padded_logits(rows)]  # [C] or [T, C]
    for row, ids in enumerate(rows):
        diff = float(np.abs(ours[row] - reference.pooled(ids[None, :])[0]).max())
        worse(worst, f"{LOGITS} (row {row} of a padded batch)", diff, len(rows), len(ids))
    return Check(
        "parity", worst["max_abs_diff"] <= FP32_TOLERANCE, {**worst, "tolerance": FP32_TOLERANCE}
    )


def check_named_rollout(model: Any, runtime: StatefulGraph, rng: np.random.Generator) -> Check:
    """In ORT: ROLLOUT_STEPS single steps carrying the state == one call over those tokens,
    to FP32_TOLERANCE; the worst tensor is named (a state the module does not hand back as
    it reads it shows here)."""
    batch = 3
    tokens = random_inputs(model, batch, ROLLOUT_STEPS, rng)
    state = random_state(runtime, batch, rng)
    whole_logits, whole_state = runtime.run(tokens, state)
    steps = []
    for t in range(ROLLOUT_STEPS):
        logits, state = runtime.run(tokens[:, t : t + 1], state)
        steps.append(logits)
    worst: dict[str, Any] = {"max_abs_diff": 0.0, "tensor": LOGITS, "batch": batch}
    worse(worst, LOGITS, float(np.abs(np.concatenate(steps, 1) - whole_logits).max()), batch, 0)
    for spec in runtime.manifest.states:
        diff = float(np.abs(state[spec.input] - whole_state[spec.input]).max())
        worse(worst, spec.output, diff, batch, 0)
    worst["time"] = f"{ROLLOUT_STEPS} single steps vs one call"
    passed = worst["max_abs_diff"] <= FP32_TOLERANCE
    return Check("rollout", passed, {**worst, "tolerance": FP32_TOLERANCE})


def report_or_raise_named(checks: list[Check]) -> dict[str, Any]:
    """The report; or ValidationError naming each failed check, its tensor and difference."""
    failed = [c for c in checks if not c.passed]
    if not failed:
        return {c.name: {"passed": c.passed, **c.figures} for c in checks}
    details = "; ".join(
        f"{c.name}: {c.figures['tensor']} differs by {c.figures['max_abs_diff']:.3g} at batch "
        f"{c.figures['batch']}, time {c.figures['time']} (tolerance {c.figures['tolerance']})"
        if "tensor" in c.figures
        else f"{c.name}: {summarize(c)}"
        for c in failed
    )
    hints = {
        "parity": "the graph vs the module's own forward",
        "rollout": "steps carrying the state vs one call: does the module hand its state back "
        "as it reads it?",
    }
    why = "; ".join(hints[c.name] for c in failed if c.name in hints)
    raise ValidationError(
        f"the exported graph failed validation ({details}){f' [{why}]' if why else ''}; "
        "nothing was written. Pass --no-validate (run_validation=False) to write it anyway"
    )


def validate_language_model(
    reference: Any, model_bytes: bytes, runtime: Generator, prompt: np.ndarray, reduced: bool
) -> dict[str, Any]:
    """verify.validate's checks with the user's module as the torch reference."""
    rng = np.random.default_rng(0)
    checks = [check_axes(model_bytes, runtime)]
    if reduced:
        checks.append(check_reduced_agreement(reference, runtime, prompt))
    else:
        checks.append(check_named_parity(reference, runtime, rng))
    checks.append(
        check_rollout(reference, runtime, rng, reduced=True)
        if reduced
        else check_named_rollout(reference, runtime, rng)
    )
    checks.append(check_greedy(reference, runtime, prompt[:32], gate=not reduced))
    return report_or_raise_named(checks)


# --------------------------------------------------------------------------- export


def open_traced(model_bytes: bytes, device: str = "cpu") -> LoadedSession:
    """An ORT session of a traced graph. ORT refuses one whose inferred shapes fix an axis
    the manifest calls symbolic: code that turns a size into a Python number (a loop over
    time steps, say) freezes it at the traced example's."""
    try:
        return open_session(model_bytes, device=device)
    except ModelError as exc:
        reason = str(exc).split(": ", 1)[-1].removesuffix("; re-export the model")
        raise ValidationError(
            f"the traced graph does not keep the contract's shapes ({reason}): the module "
            "turns a size into a Python number (e.g. a Python loop over time steps; use "
            "nn.RNN/GRU/LSTM layers instead); nothing was written"
        ) from None


def is_protocol(module: nn.Module) -> bool:
    return callable(getattr(module, "step", None))


def prepare_protocol(
    module: nn.Module, target: Target, payload: dict[str, Any]
) -> tuple[ProtocolNet, Manifest]:
    """The protocol module wrapped for the step graph (it is also the torch reference)."""
    states = parse_state_spec(module)
    net = ProtocolNet(module, states, target).eval()
    check_protocol(net, target)
    manifest = protocol_manifest(target, module, states, payload)
    describe_source(manifest, module, "protocol: step(tokens, state) and state_spec")
    return net, manifest


def prepare_automatic(
    module: nn.Module, target: Target, payload: dict[str, Any]
) -> tuple[nn.Module, UserReference, Manifest]:
    """rnnedge's own net holding the module's weights (what is exported), the module's
    forward as the torch reference, and the manifest."""
    parts = find_parts(module)
    check_parts(parts, target)
    if target.task == "language-model":
        rebuilt: nn.Module = rebuild_language_model(parts, target)
        manifest = build_manifest(payload, rebuilt, target.tokenizer)  # type: ignore[arg-type]
    else:
        rebuilt = rebuild_classifier(parts, target)
        manifest = classifier_manifest(payload, rebuilt)  # type: ignore[arg-type]
    convention = find_convention(module, rebuilt, parts, target)
    reference = UserReference(module, convention, rebuilt.config, parts.cell)
    describe_source(manifest, module, f"automatic: {parts.describe()}; {convention.describe()}")
    return rebuilt, reference, manifest


def export_language_model(
    module: nn.Module,
    target: Target,
    payload: dict[str, Any],
    provenance: dict[str, Any],
    heldout: str | Path | None,
    quantize: str | None,
    run_validation: bool,
) -> tuple[bytes, Manifest]:
    """(validated ONNX bytes, manifest) of a language model; writes nothing."""
    text = read_text(heldout, "held-out text") if heldout is not None else None
    if quantize and run_validation and not text:
        raise InputError(
            f"{quantize} export of a language model measures its bits/char change on held-out "
            "text: pass --heldout (heldout=) with text the model did not train on"
        )
    if is_protocol(module):
        net, manifest = prepare_protocol(module, target, payload)
        reference: Any = net
    else:
        net, reference, manifest = prepare_automatic(module, target, payload)
    apply_provenance(manifest, payload, provenance)
    prompt = validation_prompt(target.tokenizer, text, len(target.tokenizer))  # type: ignore[arg-type]
    checks = LMChecks(
        lambda data, graph, ids, reduced: validate_language_model(
            reference, data, graph, ids, reduced
        ),
        prompt,
        text,
        open_traced,
    )
    return validated_lm(net, manifest, checks, quantize, run_validation), manifest


def prepare_classifier(
    module: nn.Module, target: Target, payload: dict[str, Any]
) -> tuple[nn.Module, Callable[[bytes, Classifier], dict[str, Any]], Manifest]:
    """The net to export, the fp32 validation (the module as reference) and the manifest."""
    rng = np.random.default_rng(0)
    if is_protocol(module):
        net, manifest = prepare_protocol(module, target, payload)

        def checks(model_bytes: bytes, runtime: Classifier) -> list[Check]:
            return [
                check_axes(model_bytes, runtime),
                check_named_parity(net, runtime, rng),
                check_named_rollout(net, runtime, rng),
            ]

        return net, lambda b, r: report_or_raise_named(checks(b, r)), manifest
    rebuilt, reference, manifest = prepare_automatic(module, target, payload)

    def automatic_checks(model_bytes: bytes, runtime: Classifier) -> list[Check]:
        last = (
            check_named_rollout(rebuilt, runtime, rng)
            if runtime.streams
            else check_batch_invariance(rebuilt, runtime, rng)
        )
        return [
            check_axes(model_bytes, runtime),
            check_pooled_parity(reference, rebuilt, runtime, rng),
            last,
        ]

    return rebuilt, lambda b, r: report_or_raise_named(automatic_checks(b, r)), manifest


def export_classifier(
    module: nn.Module,
    target: Target,
    payload: dict[str, Any],
    provenance: dict[str, Any],
    heldout: str | Path | None,
    quantize: str | None,
    run_validation: bool,
) -> tuple[bytes, Manifest]:
    """(validated ONNX bytes, manifest) of a classifier; writes nothing. int8/fp16 are
    checked against fp32 on labelled held-out data, as rnnedge's own classifiers are."""
    payload.update(tokenizer=target.tokenizer.to_dict(), preprocessing={"kind": "text"})
    items = None
    if quantize:
        kind = input_kind(payload["preprocessing"], target.tokenizer)
        items = kind.heldout_items(target.labels, Path(heldout) if heldout else None, {}, quantize)
    net, validate_fp32, manifest = prepare_classifier(module, target, payload)
    apply_provenance(manifest, payload, provenance)
    streams = bool(manifest.states)
    graph = export_step_graph(net) if streams else export_lengths_graph(net)
    model_bytes = with_manifest(declare_shapes(graph, manifest), manifest)
    report: dict[str, Any] = {"structure": check_model(model_bytes)}
    fp32 = Classifier(open_traced(model_bytes))
    if run_validation:
        report["fp32"] = validate_fp32(model_bytes, fp32)
    fp32_size = len(model_bytes)
    if quantize and items is not None:
        model_bytes = reduce_precision(model_bytes, quantize)
        report[f"structure_{quantize}"] = check_model(model_bytes)
        reduced = Classifier(open_session(model_bytes, device=measuring_device(quantize)))
        report[quantize], report["quality"] = validate_reduced_classifier(
            fp32, reduced, quantize, *items
        )
    record_precision(manifest, quantize, fp32_size)
    report["validated"] = run_validation
    manifest.validation = report
    return with_manifest(model_bytes, manifest), manifest
