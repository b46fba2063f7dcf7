"""Classifiers with hashed n-gram inputs (`train classify --ngrams N`).

The last N - 1 token ids travel as one more state (`recent_tokens`), and the hash runs
inside the graph, so a client only feeds ids. These tests check that reading in pieces
equals reading at once (torch and the exported graph), that the state really carries the
previous ids into the hash, that reduced precisions keep the ids exact, and the one-line
refusals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from tiny_classifiers import fit_tiny_classifier

from helpers import error_line, invoke
from rnnedge.contract import RECENT_TOKENS
from rnnedge.exporter.classifier import load_classifier as load_torch_classifier
from rnnedge.exporter.graph import export_step_graph
from rnnedge.exporter.precision import convert_fp16, quantize_int8
from rnnedge.nets.classifier import ClassifierConfig, SequenceClassifier
from rnnedge.runtime import load_classifier
from rnnedge.train.checkpoint import load_checkpoint

TOLERANCE = 1e-5
TEXTS = ["w1 w2 w3 w4 w5 w6 w7", "w3", "w5 w6 w7 w8 w9 w10 w11 w12 w13", "w2 w9"]
STATE_IN = "state_in." + RECENT_TOKENS
STATE_OUT = "state_out." + RECENT_TOKENS


def tiny_model(vocab_size: int = 50, ngram_dim: int = 0) -> SequenceClassifier:
    torch.manual_seed(0)
    config = ClassifierConfig(
        num_classes=3,
        vocab_size=vocab_size,
        embed_dim=8,
        hidden=6,
        pooling="mean",
        ngram_max=4,
        ngram_buckets=37,
        ngram_dim=ngram_dim,
    )
    return SequenceClassifier(config).eval()


@pytest.mark.parametrize("ngram_dim", [0, 5], ids=["rows-as-wide", "projected-rows"])
def test_torch_pieces_equal_one_read(ngram_dim: int) -> None:
    model = tiny_model(ngram_dim=ngram_dim)
    tokens = torch.randint(1, 50, (3, 11))
    with torch.no_grad():
        whole = model(tokens, torch.tensor([11, 11, 11]))  # [3, C]
        state, pieces = None, []
        for start, end in [(0, 1), (1, 3), (3, 4), (4, 11)]:
            logits, state = model.forward_steps(tokens[:, start:end], state)
            pieces.append(logits)
    assert float((torch.cat(pieces, dim=1)[:, -1] - whole).abs().max()) <= TOLERANCE
    # The carried ids are the last three read, oldest first.
    assert state[-1][0].tolist() == tokens[:, -3:].float().tolist()


def test_previous_ids_change_the_next_input_only_through_the_state() -> None:
    """The same token after different histories gets different n-gram rows; after the same
    history (given as state or read just before) the same ones."""
    model = tiny_model()
    token = torch.tensor([[7]])
    with torch.no_grad():
        after_a = model.embed(token, torch.tensor([[0.0, 3.0, 4.0]]))
        after_b = model.embed(token, torch.tensor([[0.0, 3.0, 5.0]]))
        read_before = model.embed(torch.tensor([[3, 4, 7]]))[:, -1:]
    assert float((after_a - after_b).abs().max()) > 1e-3
    assert float((after_a - read_before).abs().max()) <= TOLERANCE


def test_input_dropout_acts_in_training_only() -> None:
    torch.manual_seed(1)
    config = ClassifierConfig(
        num_classes=3, vocab_size=50, embed_dim=8, hidden=6, pooling="mean",
        ngram_max=3, ngram_buckets=37, embed_dropout=0.5,
    )  # fmt: skip
    model = SequenceClassifier(config).requires_grad_(False)
    tokens = torch.randint(1, 50, (2, 9))
    assert float((model.embed(tokens) - model.embed(tokens)).abs().max()) > 1e-3
    model.eval()
    assert float((model.embed(tokens) - model.embed(tokens)).abs().max()) == 0.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("ngram-classifier")
    return fit_tiny_classifier(out, pooling="mean", ngram_max=3, ngram_buckets=31)


def test_manifest_declares_the_recent_tokens_state(trained: tuple[Path, Path]) -> None:
    classifier = load_classifier(trained[1], device="cpu")
    recent = [s for s in classifier.manifest.states if s.input == STATE_IN]
    assert len(recent) == 1 and recent[0].output == STATE_OUT
    assert recent[0].shape == ["batch", 1, 2]  # ngram_max - 1 ids
    assert classifier.manifest.architecture["ngram_max"] == 3
    assert classifier.manifest.validation["fp32"]["parity"]["passed"] is True


def test_exported_stream_equals_classify_and_torch(trained: tuple[Path, Path]) -> None:
    checkpoint, model_path = trained
    classifier = load_classifier(model_path, device="cpu")
    model = load_torch_classifier(load_checkpoint(checkpoint))
    batched = classifier.classify(TEXTS)  # one padded batch
    for text, prediction in zip(TEXTS, batched, strict=True):
        streamed = np.stack(list(classifier.stream(text)))[-1]  # step by step
        ids = torch.from_numpy(np.array([classifier.encode(text)], dtype=np.int64))
        with torch.no_grad():
            expected = torch.softmax(model(ids, torch.tensor([ids.shape[1]])), -1)[0].numpy()
        assert float(np.abs(streamed - prediction.probabilities).max()) <= TOLERANCE
        assert float(np.abs(streamed - expected).max()) <= 1e-4


def test_exported_single_steps_equal_one_call_from_a_read_state(
    trained: tuple[Path, Path],
) -> None:
    classifier = load_classifier(trained[1], device="cpu")
    rng = np.random.default_rng(3)
    tokens = rng.integers(1, 20, (3, 9), dtype=np.int64)
    start = classifier.initial_state(3)
    start[STATE_IN] = rng.integers(1, 20, start[STATE_IN].shape).astype(np.float32)
    whole, whole_state = classifier.run(tokens, start)
    state, steps = start, []
    for t in range(tokens.shape[1]):
        logits, state = classifier.run(tokens[:, t : t + 1], state)
        steps.append(logits)
    assert float(np.abs(np.concatenate(steps, axis=1) - whole).max()) <= TOLERANCE
    assert whole_state[STATE_IN].tolist() == tokens[:, None, -2:].astype(np.float32).tolist()
    # A different history changes the answer: the graph reads the carried ids.
    other = dict(start, **{STATE_IN: start[STATE_IN] + 1})
    assert float(np.abs(classifier.run(tokens, other)[0] - whole).max()) > 1e-4


@pytest.mark.parametrize("reduce", [convert_fp16, quantize_int8], ids=["fp16", "int8"])
def test_reduced_precision_keeps_ids_above_2048_exact(reduce) -> None:
    """fp16 holds whole numbers exactly only to 2048: the ids' path must stay fp32."""
    session = ort.InferenceSession(reduce(export_step_graph(tiny_model(vocab_size=5000))))
    feeds = {i.name: np.zeros([1, *i.shape[1:]], np.float32) for i in session.get_inputs()[1:]}
    feeds["tokens"] = np.array([[4099, 4097, 4095]], dtype=np.int64)
    feeds[STATE_IN] = np.array([[[4093, 4091, 4089]]], dtype=np.float32)
    names = [o.name for o in session.get_outputs()]
    recent = session.run(None, feeds)[names.index(STATE_OUT)]
    assert recent.tolist() == [[[4099.0, 4097.0, 4095.0]]]


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("--ngrams", "1", "--ngrams must be 0"),
        ("--ngram-buckets", "0", "--ngram-buckets"),
        ("--ngram-dim", "-1", "--ngram-dim"),
        ("--embed-dropout", "1", "--embed-dropout"),
    ],
)
def test_bad_ngram_options_fail_in_one_line(
    tmp_path: Path, option: str, value: str, needle: str
) -> None:
    table = tmp_path / "t.csv"
    table.write_text("text,label\n" + "".join(f"ab{i},x\ncd{i},y\n" for i in range(5)))
    extra = [] if option == "--ngrams" else ["--ngrams", "3"]
    result = invoke(
        "train", "classify", "--table", table, "--tokenizer", "char", "--steps", "1",
        "--out", tmp_path / "run", option, value, *extra,
    )  # fmt: skip
    error_line(result, needle)
