"""The tutorial reproductions' library pieces (export/): the numeric gradient check, the
gradient through time, the IMDB recipes on the aclImdb layout, binary addition of numbers
far longer than the model was trained on, and the poems' split by item."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib

from helpers import invoke, succeeded
from rnnedge.runtime import load_classifier
from rnnedge.tasks import encode_addition

ROOT = Path(__file__).resolve().parents[1]
EXPORT = ROOT / "export"


@pytest.fixture(scope="module", autouse=True)
def export_on_path():
    sys.path.insert(0, str(EXPORT))
    yield
    sys.path.remove(str(EXPORT))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_gradient_check_agrees_with_autograd(cell: str) -> None:
    from gradients import gradient_check

    result = gradient_check(cell)
    assert result["parameters"] > 100
    assert result["relative_difference"] < 1e-6


def test_gradient_check_catches_a_wrong_gradient(monkeypatch) -> None:
    import gradients

    original = gradients.sequence_loss
    # Autograd sees twice the loss the finite differences see: a 1/3 relative difference.
    calls = {"n": 0}

    def doubled_first_call(model, inputs, targets):
        calls["n"] += 1
        loss = original(model, inputs, targets)
        return loss * 2 if calls["n"] == 1 else loss

    monkeypatch.setattr(gradients, "sequence_loss", doubled_first_call)
    assert gradients.gradient_check("rnn")["relative_difference"] > 0.3


def test_gradient_fades_through_time_faster_in_a_vanilla_rnn() -> None:
    from gradients import gradient_through_time

    result = gradient_through_time(steps=30, hidden=16, train_steps=0)
    rnn, lstm = result["rnn"]["init"], result["lstm"]["init"]
    assert len(rnn) == len(lstm) == 30
    # How much of the last step's gradient reaches the first step.
    assert rnn[0] / rnn[-1] < 1e-4
    assert lstm[0] / lstm[-1] > 100 * rnn[0] / rnn[-1]


def make_aclimdb(root: Path, reviews: int = 12) -> Path:
    """The aclImdb layout: {train,test}/{pos,neg}/<id>_<stars>.txt, plus train/unsup."""
    words = {"pos": "great superb moving loved wonderful", "neg": "awful boring dull hated bad"}
    for split in ("train", "test"):
        for label, vocab in words.items():
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(reviews):
                stars = 9 if label == "pos" else 2
                text = " ".join(np.random.default_rng(i).permutation(vocab.split()))
                (folder / f"{i}_{stars}.txt").write_text(f"This film was {text}.<br /><br />")
    (root / "train" / "unsup").mkdir()
    (root / "train" / "unsup" / "0_0.txt").write_text("unlabelled")
    return root


@pytest.mark.parametrize("recipe", ["imdb-lstm", "imdb-bilstm"])
def test_imdb_recipe_trains_and_exports_on_the_aclimdb_layout(recipe: str, tmp_path: Path):
    data = make_aclimdb(tmp_path / "aclImdb")
    spec = tomllib.loads((EXPORT / f"{recipe}.toml").read_text())
    args = [str(data) if a == "data/aclImdb" else a for a in spec["train"]]
    # The recipe's own hyper-parameters, a few steps only.
    for option, value in (("--steps", "4"), ("--eval-every", "2"), ("--out", tmp_path / "run")):
        args[args.index(option) + 1] = str(value)
    succeeded(invoke(*args))
    model = tmp_path / f"{recipe}.onnx"
    succeeded(invoke("export", tmp_path / "run" / "best.pt", "-o", model))
    classifier = load_classifier(model, device="cpu")
    assert classifier.labels == ["neg", "pos"]
    assert classifier.manifest.architecture["hidden"] == 128
    assert classifier.manifest.architecture["bidirectional"] == (recipe == "imdb-bilstm")
    evaluate = [str(model) if a == "{model}" else a for a in spec["evaluate"]]
    evaluate = [str(data) if a == "data/aclImdb" else a for a in evaluate]
    assert '"examples": 24' in succeeded(invoke(*evaluate)).stdout


def test_encode_addition_takes_numbers_wider_than_63_bits() -> None:
    a, b = 2**70 + 5, 2**64 + 3
    features = encode_addition(f"{a}+{b}", 71)
    assert features.shape == (72, 2)
    decoded = [int(sum(int(bit) << i for i, bit in enumerate(features[:, k]))) for k in (0, 1)]
    assert decoded == [a, b]


@pytest.fixture(scope="module")
def add8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("add8")
    succeeded(invoke("train", "add", "--bits", "8", "--steps", "400", "--out", folder / "run"))
    succeeded(invoke("export", folder / "run" / "best.pt", "-o", folder / "add8.onnx"))
    return folder / "add8.onnx"


def test_an_8_bit_adder_streams_sums_of_100_bit_numbers(add8: Path) -> None:
    from addition import exact_rate, stream_sum, stream_sum_bits

    classifier = load_classifier(add8, device="cpu")
    a, b = 2**99 + 12345678901234567, 2**98 - 1  # a carry runs through 80-odd ones
    steps = list(stream_sum_bits(classifier, a, b))
    assert len(steps) == 101  # one step per bit pair, and one for the last carry
    assert all(0.5 < probability <= 1.0 for _, probability in steps)
    assert stream_sum(classifier, a, b) == a + b
    assert stream_sum(classifier, 2**200 - 1, 1) == 2**200
    assert exact_rate(classifier, 100, 20, seed=3) == 1.0


def test_poems_split_keeps_held_out_lines_out_of_training() -> None:
    from poems import content_lines, split_items

    shared = "床前明月光，疑是地上霜。"
    items = [f"《{i}》\n{shared if i % 7 == 0 else f'第{i}首诗的句子在这里。'}" for i in range(200)]
    items += items[:5]  # exact duplicates
    train, heldout = split_items(items, every=4, seed=0)
    assert len(train) + len(heldout) == 200
    assert heldout and not set(train) & set(heldout)
    seen = set().union(*(content_lines(item) for item in train))
    assert all(not content_lines(item) & seen for item in heldout)
    assert any(shared in item for item in train)
    assert not any(shared in item for item in heldout)


def test_poem_line_form_counts_chinese_clauses_only() -> None:
    from poems import clause_lengths, form_share

    text = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n"
    text += "    -- 李白《静夜思》\n春风又绿江南岸"
    assert clause_lengths(text) == [5, 5, 5, 5, 7]  # the attribution is not a line
    assert clause_lengths(text, cut_short=True) == [5, 5, 5, 5]  # a sample's cut-off end
    lines = "千山鸟飞绝，万径人踪灭。孤舟蓑笠翁独钓寒江雪。两岸猿声啼不住"
    share = form_share(clause_lengths(lines))
    assert share == {"clauses": 4, "five": 0.5, "seven": 0.25}  # lengths 5, 5, 10, 7
