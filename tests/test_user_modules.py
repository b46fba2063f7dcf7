"""Bring your own model: users' own torch modules, written here the way users write them
(not rnnedge's nets), exported with `rnnedge export --module` and run with `rnnedge infer`.

- the from-scratch tutorial's char RNN: one-hot built in forward from ``inputs.T``,
  sequence-first ``nn.RNN``, its own ``(1, B, H)`` state, logits flattened ``[(T*B), V]``;
- a Keras-style Embedding → 2-layer LSTM → Linear, batch-first (trained a few steps; int8);
- a bidirectional GRU classifier pooling ``h_n`` of both directions (fp16);
- a GRU whose per-layer hidden states the user keeps as a tuple: the protocol path;
- a word-LM in the style of PyTorch's word_language_model example (tokens ``[T, B]``,
  ``log_softmax`` output).

The oracle is always the user's own module, called by the test the way its author would:
the CLI's greedy text must equal the module's own greedy continuation, the CLI's labels
the module's own argmax. Failures: a module the automatic path does not understand, a
forward that computes more than its layers, and a graph that disagrees with the module.
This file is also the `--module` file the CLI loads (its factories are module-level).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from test_node_client import node as node_client  # noqa: F401  (fixture: node + npm packages)
from test_node_client import run_node
from torch import nn
from torch.nn import functional as F

from conftest import make_text
from helpers import error_line, invoke, succeeded
from rnnedge.errors import InputError, ValidationError
from rnnedge.exporter import export_module
from rnnedge.runtime import load, load_classifier

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "rnnedge" / "manifest.schema.json").read_text())
VOCAB = sorted(set(make_text(20_000)))  # a-z (those used), space, '.', newline
LABELS = ["neg", "neu", "pos"]
HIDDEN = 16


# ----------------------------------------------------------------- the users' modules


class TutorialRNN(nn.Module):
    """The from-scratch tutorial's char model, as its PyTorch version writes it."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = nn.RNN(vocab_size, HIDDEN)
        self.linear = nn.Linear(HIDDEN, vocab_size)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor) -> tuple:
        x = F.one_hot(inputs.T.long(), self.vocab_size).to(torch.float32)  # [T, B, V]
        y, state = self.rnn(x, state)  # [T, B, H], state [1, B, H]
        return self.linear(y.reshape((-1, y.shape[-1]))), state  # [(T*B), V]

    def begin_state(self, batch: int) -> torch.Tensor:
        return torch.zeros((1, batch, HIDDEN))


class KerasStyleLSTM(nn.Module):
    """Embedding → LSTM(2 layers) → Dense, batch-first, state (h, c) or None."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 8)
        self.lstm = nn.LSTM(8, HIDDEN, num_layers=2, batch_first=True, dropout=0.1)
        self.dropout = nn.Dropout(0.2)
        self.dense = nn.Linear(HIDDEN, vocab_size)

    def forward(self, x: torch.Tensor, state: tuple | None = None) -> tuple:
        out, state = self.lstm(self.embedding(x), state)  # [B, T, H]
        return self.dense(self.dropout(out)), state


class BiGRUClassifier(nn.Module):
    """Embedding → bidirectional GRU → Linear on both directions' final states."""

    def __init__(self, vocab_size: int, num_labels: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab_size, 8)
        self.gru = nn.GRU(8, HIDDEN, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * HIDDEN, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(self.emb(x))  # h [2, B, H]
        return self.fc(torch.cat([h[-2], h[-1]], dim=1))


class MeanPooledWordLSTM(nn.Module):
    """A word classifier: Embedding → LSTM → mean over the steps → Linear."""

    def __init__(self, vocab_size: int, num_labels: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 8, padding_idx=0)
        self.lstm = nn.LSTM(8, HIDDEN, batch_first=True)
        self.classify = nn.Linear(HIDDEN, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(x))  # [B, T, H]
        return self.classify(out.mean(1))


class CharTagger(nn.Module):
    """A class for every character: Embedding → bidirectional GRU → Linear at each step."""

    def __init__(self, vocab_size: int, num_labels: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab_size, 8)
        self.gru = nn.GRU(8, HIDDEN, batch_first=True, bidirectional=True)
        self.tag = nn.Linear(2 * HIDDEN, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tag(self.gru(self.emb(x))[0])  # [B, T, labels]


class OneHotGRUClassifier(nn.Module):
    """One-hot characters → GRU → Linear on the last step's output."""

    def __init__(self, vocab_size: int, num_labels: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.gru = nn.GRU(vocab_size, HIDDEN, batch_first=True)
        self.fc = nn.Linear(HIDDEN, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(F.one_hot(x, self.vocab_size).float())
        return self.fc(out[:, -1])


class TupleStateGRU(nn.Module):
    """Two stacked single-layer GRUs; the user keeps their states as a tuple (h1, h2) of
    [B, H] each, so it brings the protocol: step() and state_spec."""

    state_spec = (("h1", ("batch", HIDDEN)), ("h2", ("batch", HIDDEN)))

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab_size, 8)
        self.lower = nn.GRU(8, HIDDEN, batch_first=True)
        self.upper = nn.GRU(HIDDEN, HIDDEN, batch_first=True)
        self.out = nn.Linear(HIDDEN, vocab_size)

    def step(self, tokens: torch.Tensor, state: tuple) -> tuple:
        h1, h2 = state
        y, h1 = self.lower(self.emb(tokens), h1.unsqueeze(0))
        y, h2 = self.upper(y, h2.unsqueeze(0))
        return self.out(y), (h1.squeeze(0), h2.squeeze(0))


class TupleStateClassifier(TupleStateGRU):
    """The tuple-state GRU with a label head: a streaming classifier through the protocol."""

    def __init__(self, vocab_size: int, num_labels: int) -> None:
        super().__init__(vocab_size)
        self.out = nn.Linear(HIDDEN, num_labels)


class WordLanguageModelStyle(nn.Module):
    """PyTorch's word_language_model layout: tokens [T, B] in, log-probabilities
    [(T*B), V] out, GRU state [L, B, H]."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab_size, 8)
        self.rnn = nn.GRU(8, HIDDEN, num_layers=2)
        self.decoder = nn.Linear(HIDDEN, vocab_size)

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor) -> tuple:
        output, hidden = self.rnn(self.encoder(tokens), hidden)
        decoded = self.decoder(output).view(-1, self.decoder.out_features)
        return F.log_softmax(decoded, dim=1), hidden


class WithLayerNorm(KerasStyleLSTM):
    def __init__(self, vocab_size: int) -> None:
        super().__init__(vocab_size)
        self.norm = nn.LayerNorm(HIDDEN)


class ScaledLogits(KerasStyleLSTM):
    """Its forward does more than its layers: the automatic path must refuse it."""

    def forward(self, x: torch.Tensor, state: tuple | None = None) -> tuple:
        logits, state = super().forward(x, state)
        return 2 * logits, state


class LengthDependentStep(TupleStateGRU):
    """A step whose result depends on a Python number taken from the input's length: the
    trace freezes it, so the graph disagrees with the module at other lengths."""

    def step(self, tokens: torch.Tensor, state: tuple) -> tuple:
        logits, state = super().step(tokens, state)
        return logits + 0.1 * float(tokens.shape[1]), state


class LoopOverTime(nn.Module):
    """A protocol step with a Python loop over time: traced at one length."""

    state_spec = (("h", ("batch", HIDDEN)),)

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab_size, 8)
        self.cell = nn.GRUCell(8, HIDDEN)
        self.out = nn.Linear(HIDDEN, vocab_size)

    def step(self, tokens: torch.Tensor, state: tuple) -> tuple:
        (h,) = state
        outputs = []
        for x in self.emb(tokens).unbind(1):
            h = self.cell(x, h)
            outputs.append(self.out(h))
        return torch.stack(outputs, 1), (h,)


class NoBiasInContainers(nn.Module):
    """Sequence-first LSTM without bias; embedding and head inside nn.Sequential."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.encode = nn.Sequential(nn.Embedding(vocab_size, 8))
        self.lstm = nn.LSTM(8, HIDDEN, num_layers=2, bias=False)
        self.decode = nn.Sequential(nn.Dropout(0.1), nn.Linear(HIDDEN, vocab_size, bias=False))

    def forward(self, tokens: torch.Tensor, state: tuple) -> tuple:
        y, state = self.lstm(self.encode(tokens), state)  # tokens [T, B]
        return self.decode(y), state  # [T, B, V]


class SwappedStates(TupleStateGRU):
    """Hands its states back in the other order than it reads them: each call alone is
    what the module computes, but carrying state from call to call is not."""

    def step(self, tokens: torch.Tensor, state: tuple) -> tuple:
        logits, (h1, h2) = super().step(tokens, state)
        return logits, (h2, h1)


def tutorial_rnn(vocab_size: int) -> nn.Module:
    return TutorialRNN(vocab_size)


def keras_lstm(vocab_size: int) -> nn.Module:
    return KerasStyleLSTM(vocab_size)


def bigru_classifier(vocab_size: int, num_labels: int) -> nn.Module:
    return BiGRUClassifier(vocab_size, num_labels)


def tuple_gru(vocab_size: int) -> nn.Module:
    return TupleStateGRU(vocab_size)


def word_lm(vocab_size: int) -> nn.Module:
    return WordLanguageModelStyle(vocab_size)


def with_layer_norm(vocab_size: int) -> nn.Module:
    return WithLayerNorm(vocab_size)


# ----------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def one_thread() -> object:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def escaped(entry: str) -> str:
    return {"\n": "\\n", "\\": "\\\\"}.get(entry, entry)


def save_user_files(tmp_path: Path, module: nn.Module) -> tuple[Path, Path]:
    """The module's state_dict and the vocabulary file, as a user would save them."""
    weights, vocab = tmp_path / "weights.pt", tmp_path / "vocab.txt"
    torch.save(module.state_dict(), weights)
    vocab.write_text("".join(escaped(ch) + "\n" for ch in VOCAB), encoding="utf-8")
    return weights, vocab


def export_cli(tmp_path: Path, factory: str, module: nn.Module, *extra: str | Path) -> Path:
    weights, vocab = save_user_files(tmp_path, module)
    out = tmp_path / f"{factory}.onnx"
    succeeded(
        invoke(
            "export", "--module", f"{__file__}:{factory}", "--weights", weights,
            "--vocab", vocab, "-o", out, *extra,
        )
    )  # fmt: skip
    return out


def check_manifest(model: Path) -> None:
    """The file's manifest follows the contract's JSON Schema, and inspect shows whose it is."""
    manifest = load(model, device="cpu").manifest
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(manifest.to_json()))
    assert "the user's own code" in succeeded(invoke("inspect", model)).stdout


def ids(text: str) -> torch.Tensor:
    return torch.tensor([[VOCAB.index(ch) for ch in text]])  # [1, T]


def greedy_text(step: object, prompt: str, count: int) -> str:
    """Greedy continuation by the user's own module: `step(tokens [1, T], state)` returns
    (scores [1, T, V], state); state None means the module's zero state."""
    with torch.no_grad():
        scores, state = step(ids(prompt), None)  # type: ignore[operator]
        out = []
        for _ in range(count):
            token = int(scores[0, -1].argmax())
            out.append(VOCAB[token])
            scores, state = step(torch.tensor([[token]]), state)  # type: ignore[operator]
    return "".join(out)


def cli_greedy(model: Path, prompt: str, count: int) -> str:
    result = succeeded(
        invoke(
            "infer", "generate", model, "--prompt", prompt, "--max-new-tokens", count,
            "--temperature", 0, "--no-echo",
        )
    )  # fmt: skip
    return result.stdout.rstrip("\n")


def train_keras_lstm(module: KerasStyleLSTM, text: str, steps: int = 60) -> None:
    """A few steps of the user's own training loop (random windows, batch-first)."""
    torch.manual_seed(0)
    data = ids(text)[0]
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    module.train()
    for _ in range(steps):
        starts = torch.randint(0, len(data) - 33, (16,)).tolist()
        windows = torch.stack([data[s : s + 33] for s in starts])  # [16, 33]
        logits, _ = module(windows[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, len(VOCAB)), windows[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    module.eval()


# ----------------------------------------------------------------- the four shapes (+1)


def test_tutorial_one_hot_sequence_first_rnn(tmp_path: Path) -> None:
    torch.manual_seed(1)
    user = TutorialRNN(len(VOCAB)).eval()
    model = export_cli(tmp_path, "tutorial_rnn", user)

    def step(tokens: torch.Tensor, state: torch.Tensor | None) -> tuple:
        flat, state = user(tokens, user.begin_state(1) if state is None else state)
        return flat.reshape(tokens.shape[1], 1, -1).transpose(0, 1), state  # [1, T, V]

    assert cli_greedy(model, "and the ", 40) == greedy_text(step, "and the ", 40)
    check_manifest(model)
    # The graph's contract: batch-first state [B, 1, H]; and the module's own numbers at
    # a batch and length it was not traced with.
    runtime = load(model, device="cpu")
    tokens = np.random.default_rng(0).integers(0, len(VOCAB), (3, 7))
    state = np.random.default_rng(1).standard_normal((3, 1, HIDDEN)).astype(np.float32)
    logits, new_state = runtime.run(tokens, {"state_in.h": state})
    with torch.no_grad():
        flat, h = user(torch.from_numpy(tokens), torch.from_numpy(state).transpose(0, 1))
    np.testing.assert_allclose(logits, flat.reshape(7, 3, -1).transpose(0, 1), atol=1e-5)
    np.testing.assert_allclose(new_state["state_in.h"], h.transpose(0, 1), atol=1e-5)


def test_keras_style_embedding_lstm_trained_and_int8(tmp_path: Path, corpus: Path) -> None:
    torch.manual_seed(2)
    user = KerasStyleLSTM(len(VOCAB))
    text = corpus.read_text()
    train_keras_lstm(user, text[:15_000])
    heldout = tmp_path / "heldout.txt"
    heldout.write_text(text[15_000:])
    model = export_cli(tmp_path, "keras_lstm", user)
    assert cli_greedy(model, "and the lord", 60) == greedy_text(user, "and the lord", 60)

    int8 = export_cli(tmp_path, "keras_lstm", user, "--quantize", "int8", "--heldout", heldout)
    runtime = load(int8, device="cpu")
    assert runtime.precision == "int8"
    assert "com.microsoft" in runtime.manifest.operator_domains  # the LSTM itself is int8
    # Its held-out bits/char, measured here by the runtime, is close to fp32's.
    change = (
        runtime.evaluate(heldout.read_text())["bpc"]
        - load(model).evaluate(heldout.read_text())["bpc"]
    )
    assert abs(change) < 0.05
    assert len(cli_greedy(int8, "and the lord", 30)) == 30


def test_int8_without_heldout_is_refused(tmp_path: Path) -> None:
    weights, vocab = save_user_files(tmp_path, KerasStyleLSTM(len(VOCAB)))
    out = tmp_path / "m.onnx"
    result = invoke(
        "export", "--module", f"{__file__}:keras_lstm", "--weights", weights, "--vocab", vocab,
        "-o", out, "--quantize", "int8",
    )  # fmt: skip
    error_line(result, "--heldout")
    assert not out.exists()


def test_bidirectional_gru_classifier_fp16(tmp_path: Path) -> None:
    torch.manual_seed(3)
    user = BiGRUClassifier(len(VOCAB), len(LABELS)).eval()
    nn.init.normal_(user.fc.weight, std=3.0)  # untrained, but with decided answers
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    table = tmp_path / "heldout.csv"
    texts = [line for line in make_text(3000, seed=5).splitlines() if line][:40]
    rows = [f"{t},{LABELS[i % 3]}" for i, t in enumerate(texts)]
    table.write_text("text,label\n" + "\n".join(rows) + "\n")
    model = export_cli(tmp_path, "bigru_classifier", user, "--labels", labels)
    inputs = ["and the lord said", "i", "behold the name of israel for ever and ever."]
    result = succeeded(invoke("infer", "classify", model, *inputs, "--json"))
    got = [json.loads(line)["label"] for line in result.stdout.splitlines()]
    with torch.no_grad():
        want = [LABELS[int(user(ids(text)).argmax())] for text in inputs]  # each alone
    assert got == want
    classifier = load_classifier(model, device="cpu")
    assert not classifier.streams  # bidirectional: the whole-sequence lengths graph
    check_manifest(model)
    with torch.no_grad():
        expected = np.stack([user(ids(text))[0].numpy() for text in inputs])
    np.testing.assert_allclose(np.stack(classifier.logits(inputs)), expected, atol=1e-5)

    fp16 = export_cli(
        tmp_path, "bigru_classifier", user, "--labels", labels, "--fp16", "--heldout", table
    )
    assert load_classifier(fp16, device="cpu").precision == "fp16"
    result = succeeded(invoke("infer", "classify", fp16, *inputs, "--json"))
    assert [json.loads(line)["label"] for line in result.stdout.splitlines()] == want


def test_mean_pooled_word_classifier_streams(tmp_path: Path) -> None:
    torch.manual_seed(9)
    words = ["<pad>", "<unk>", *sorted(set(make_text(2000).split()))]
    user = MeanPooledWordLSTM(len(words), len(LABELS)).eval()
    nn.init.normal_(user.classify.weight, std=3.0)
    options = dict(task="classification", vocabulary=words, labels=LABELS)
    with pytest.raises(InputError, match="pooled 'last'"):  # its forward is not last-pooled
        export_module(user, output=tmp_path / "last.onnx", **options)
    model = export_module(user, output=tmp_path / "m.onnx", pooling="mean", **options)
    classifier = load_classifier(model, device="cpu")
    assert classifier.streams  # unidirectional: the step graph, the running mean in its state
    texts = ["and the lord said unto moses", "behold", "zzz the land of israel"]
    with torch.no_grad():
        expected = np.stack(
            [
                user(torch.tensor([[words.index(w) if w in words else 1 for w in t.split()]]))[0]
                for t in texts
            ]
        )
    np.testing.assert_allclose(np.stack(classifier.logits(texts)), expected, atol=1e-5)
    result = succeeded(invoke("infer", "classify", model, texts[0], "--stream", "--json"))
    steps = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(steps) == len(texts[0].split())  # a prediction after every word
    last = steps[-1]["probabilities"]
    assert max(last, key=last.get) == LABELS[int(expected[0].argmax())]


def test_one_hot_classifier_and_a_bidirectional_language_model(tmp_path: Path) -> None:
    torch.manual_seed(12)
    user = OneHotGRUClassifier(len(VOCAB), len(LABELS)).eval()
    options = dict(task="classification", vocabulary=VOCAB, labels=LABELS)
    classifier = load_classifier(export_module(user, output=tmp_path / "m.onnx", **options))
    texts = ["and the lord said", "i"]
    with torch.no_grad():
        expected = np.stack([user(ids(text))[0].numpy() for text in texts])
    np.testing.assert_allclose(np.stack(classifier.logits(texts)), expected, atol=1e-5)
    bidirectional = TutorialRNN(len(VOCAB))
    bidirectional.rnn = nn.RNN(len(VOCAB), HIDDEN // 2, bidirectional=True)
    with pytest.raises(InputError, match="'rnn' is bidirectional"):
        export_module(bidirectional, vocabulary=VOCAB, output=tmp_path / "lm.onnx")


def test_per_step_tagger(tmp_path: Path) -> None:
    torch.manual_seed(10)
    user = CharTagger(len(VOCAB), len(LABELS)).eval()
    nn.init.normal_(user.tag.weight, std=3.0)
    options = dict(task="classification", vocabulary=VOCAB, labels=LABELS)
    with pytest.raises(InputError, match=r"shaped \[2, 3, 3\].*pooling per-step"):
        export_module(user, output=tmp_path / "pooled.onnx", **options)
    model = export_module(user, output=tmp_path / "m.onnx", pooling="per-step", **options)
    texts = ["and the lord", "i will"]
    result = succeeded(invoke("infer", "classify", model, *texts, "--json"))
    got = [json.loads(line)["steps"] for line in result.stdout.splitlines()]
    with torch.no_grad():
        want = [[LABELS[int(i)] for i in user(ids(text))[0].argmax(-1)] for text in texts]
    assert got == want


def test_tuple_state_gru_through_the_protocol(tmp_path: Path) -> None:
    torch.manual_seed(4)
    user = TupleStateGRU(len(VOCAB)).eval()
    model = export_cli(tmp_path, "tuple_gru", user)

    def step(tokens: torch.Tensor, state: tuple | None) -> tuple:
        zero = (torch.zeros(1, HIDDEN), torch.zeros(1, HIDDEN))
        return user.step(tokens, zero if state is None else state)

    assert cli_greedy(model, "moses ", 40) == greedy_text(step, "moses ", 40)
    check_manifest(model)
    manifest = load(model, device="cpu").manifest
    assert [s.input for s in manifest.states] == ["state_in.h1", "state_in.h2"]
    assert [s.shape for s in manifest.states] == [["batch", 1, HIDDEN]] * 2


def test_node_client_runs_a_user_model_like_the_cli(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The protocol model's two tuple states and the tutorial's RNN, in JavaScript."""
    node = request.getfixturevalue("node_client")  # skips, saying why, without node/npm
    for factory, module in (("tuple_gru", TupleStateGRU), ("tutorial_rnn", TutorialRNN)):
        torch.manual_seed(8)
        model = export_cli(tmp_path, factory, module(len(VOCAB)).eval())
        args = ["--prompt", "and the ", "--max-new-tokens", "300", "--seed", "5"]
        python = succeeded(invoke("infer", "generate", model, *args)).stdout
        assert run_node(node, "generate.mjs", str(model), *args).decode() == python


def test_protocol_classifier_streams(tmp_path: Path) -> None:
    torch.manual_seed(11)
    user = TupleStateClassifier(len(VOCAB), len(LABELS)).eval()
    nn.init.normal_(user.out.weight, std=3.0)
    options = dict(task="classification", vocabulary=VOCAB, labels=LABELS)
    with pytest.raises(InputError, match=r"pooling is last .* or per-step, not 'mean'"):
        export_module(user, output=tmp_path / "mean.onnx", pooling="mean", **options)
    classifier = load_classifier(export_module(user, output=tmp_path / "m.onnx", **options))
    assert classifier.streams
    texts = ["and the lord said", "i", "behold the name"]
    zero = (torch.zeros(1, HIDDEN), torch.zeros(1, HIDDEN))
    with torch.no_grad():
        expected = np.stack([user.step(ids(text), zero)[0][0, -1].numpy() for text in texts])
    np.testing.assert_allclose(np.stack(classifier.logits(texts)), expected, atol=1e-5)


def test_word_language_model_style_time_major_log_softmax(tmp_path: Path) -> None:
    torch.manual_seed(5)
    user = WordLanguageModelStyle(len(VOCAB)).eval()
    model = export_cli(tmp_path, "word_lm", user)

    def step(tokens: torch.Tensor, state: torch.Tensor | None) -> tuple:
        state = torch.zeros(2, 1, HIDDEN) if state is None else state
        flat, state = user(tokens.T, state)
        return flat.reshape(tokens.shape[1], 1, -1).transpose(0, 1), state

    assert cli_greedy(model, "unto ", 40) == greedy_text(step, "unto ", 40)


def test_no_bias_and_containers(tmp_path: Path) -> None:
    torch.manual_seed(7)
    user = NoBiasInContainers(len(VOCAB)).eval()
    runtime = load(export_module(user, vocabulary=VOCAB, output=tmp_path / "m.onnx"))
    tokens = np.random.default_rng(0).integers(0, len(VOCAB), (3, 7))
    state = runtime.initial_state(3)
    logits, _ = runtime.run(tokens, state)
    with torch.no_grad():
        zero = (torch.zeros(2, 3, HIDDEN), torch.zeros(2, 3, HIDDEN))
        expected, _ = user(torch.from_numpy(tokens).T, zero)  # [T, B, V]
    np.testing.assert_allclose(logits, expected.transpose(0, 1), atol=1e-5)


def test_python_api_returns_the_path(tmp_path: Path) -> None:
    torch.manual_seed(6)
    out = export_module(
        KerasStyleLSTM(len(VOCAB)), vocabulary=VOCAB, output=tmp_path / "api.onnx",
        identity={"name": "byom", "license": "MIT"},
    )  # fmt: skip
    assert out == tmp_path / "api.onnx"
    manifest = load(out, device="cpu").manifest
    assert manifest.identity["name"] == "byom" and manifest.identity["license"] == "MIT"
    assert manifest.architecture["source"] == "user module"


# ----------------------------------------------------------------- refusals


def test_unknown_layer_is_named_with_the_way_out(tmp_path: Path) -> None:
    weights, vocab = save_user_files(tmp_path, WithLayerNorm(len(VOCAB)))
    out = tmp_path / "m.onnx"
    result = invoke(
        "export", "--module", f"{__file__}:with_layer_norm", "--weights", weights,
        "--vocab", vocab, "-o", out,
    )  # fmt: skip
    error_line(result, "'norm'", "LayerNorm", "step(tokens, state)", "state_spec")
    assert not out.exists()


def test_forward_that_does_more_than_its_layers_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"does not compute what its layers do.*state_spec"):
        export_module(ScaledLogits(len(VOCAB)), vocabulary=VOCAB, output=tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_graph_that_disagrees_names_the_tensor_and_the_difference(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    with pytest.raises(ValidationError) as caught:
        export_module(LengthDependentStep(len(VOCAB)), vocabulary=VOCAB, output=out)
    # 0.1 * (T - 5) with T = 64, the longest length checked, against the traced T = 5
    assert re.search(r"parity: logits differs by 5\.9\d* at batch 1, time 64", str(caught.value))
    assert not out.exists()


def test_a_python_loop_over_time_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    with pytest.raises(ValidationError, match=r"'logits'.*\[.batch., 5, .*loop over time"):
        export_module(LoopOverTime(len(VOCAB)), vocabulary=VOCAB, output=out)
    assert not out.exists()


def test_state_that_does_not_carry_is_named(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    with pytest.raises(ValidationError) as caught:
        export_module(SwappedStates(len(VOCAB)), vocabulary=VOCAB, output=out)
    message = str(caught.value)
    assert re.search(r"rollout: (logits|state_out\.h[12]) differs by [0-9.e-]+ ", message)
    assert "parity" not in message  # each call alone is the module's own answer
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--module", "nofile.py:build"], ["'nofile.py' is not a file"]),
        (["--module", f"{__file__}"], ["path/to/file.py:factory"]),
        (["--module", f"{__file__}:missing_factory"], ["no callable 'missing_factory'"]),
        (["--module", f"{__file__}:keras_lstm", "--weights", __file__], ["--weights"]),
    ],
)
def test_bad_module_files_are_one_line(tmp_path: Path, args: list[str], needles: list) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(escaped(ch) + "\n" for ch in VOCAB), encoding="utf-8")
    result = invoke("export", *args, "--vocab", vocab, "-o", tmp_path / "m.onnx")
    error_line(result, *needles)


def test_weights_for_another_vocabulary_are_one_line(tmp_path: Path) -> None:
    weights, _ = save_user_files(tmp_path, KerasStyleLSTM(len(VOCAB)))
    small = tmp_path / "small.txt"
    small.write_text("a\nb\n")
    result = invoke(
        "export", "--module", f"{__file__}:keras_lstm", "--weights", weights,
        "--vocab", small, "-o", tmp_path / "m.onnx",
    )  # fmt: skip
    error_line(result, "wrong shape", f"embedding.weight [{len(VOCAB)}, 8]", "[2, 8]")


# ----------------------------------------------------------------- README


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    """The README's 'Bring your own model' shell block, line by line, in an empty folder
    that sees the checkout's examples/ and tests/data/ (the paths it names)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Bring your own model", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README has no sh block under 'Bring your own model'"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ["PATH"]}
    script = "set -euo pipefail\n" + block.group(1)
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "byom" / "char-rnn-int8.onnx").is_file()
    assert "held-out bits/char: fp32" in result.stdout  # the int8 change, measured
    assert "\nAnd the" in result.stdout  # the generated text, prompt echoed
