"""Sequence classifiers from training to onnxruntime.

- Bidirectional models read padded batches with ``lengths``: every
  input's answer in a batch must equal its answer alone, in torch and in the exported graph.
- Unidirectional step graphs stream: the answer after the last step equals the batched
  answer, and K single steps carrying state equal one call.
- The ``add``, image-row (IDX) and text tasks end to end through the command line.

Models are tiny and trained for a few steps: these tests check plumbing and exactness,
not accuracy (except ``add``, which reaches exact sums in a few hundred steps).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from tiny_classifiers import fit_tiny_classifier
from typer.testing import Result

from helpers import invoke, succeeded, write_idx
from rnnedge.errors import InputError
from rnnedge.exporter.classifier import load_classifier as load_torch_classifier
from rnnedge.exporter.precision import convert_fp16, quantize_int8
from rnnedge.runtime import Classifier, load, load_classifier
from rnnedge.tasks import encode_addition
from rnnedge.train.checkpoint import load_checkpoint

TOLERANCE = 1e-5
# Texts of different lengths (7, 1, 13, 2 and 4 words); "zzz" is not in the vocabulary.
TEXTS = [
    "w1 w2 w3 w4 w5 w6 w7",
    "w3",
    "w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17",
    "w2 w9",
    "w4 zzz w4 w0",
]


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max())


# --------------------------------------------------------------------------------------
# Models trained with fit_labelled on a tiny token set, exported, cached for the session
# --------------------------------------------------------------------------------------


class ModelCache:
    """Train (3 steps) and export each configuration once per session."""

    def __init__(self, root: Path) -> None:
        self.root, self.built = root, {}

    def get(self, cell: str, pooling: str, bidirectional: bool) -> tuple[Path, Path]:
        key = (cell, pooling, bidirectional)
        if key not in self.built:
            out = self.root / f"{cell}-{pooling}-{'bi' if bidirectional else 'uni'}"
            self.built[key] = fit_tiny_classifier(
                out, cell=cell, layers=2, bidirectional=bidirectional, pooling=pooling
            )
        return self.built[key]


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelCache:
    return ModelCache(tmp_path_factory.mktemp("classifiers"))


def torch_model(checkpoint: Path) -> torch.nn.Module:
    return load_torch_classifier(load_checkpoint(checkpoint))


def padded(rows: list[np.ndarray], fill: int) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    batch = np.full((len(rows), lengths.max()), fill, dtype=np.int64)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = row
    return torch.from_numpy(batch), torch.from_numpy(lengths)


def torch_probabilities(
    model: torch.nn.Module, rows: list[np.ndarray], fill: int
) -> list[np.ndarray]:
    """Per row: softmax of the model on a padded batch (real steps only for per-step)."""
    batch, lengths = padded(rows, fill)
    with torch.no_grad():
        probs = torch.softmax(model(batch, lengths), dim=-1).numpy()
    return [probs[i, :n] if probs.ndim == 3 else probs[i] for i, n in enumerate(lengths.tolist())]


WHOLE_SEQUENCE = [
    *(
        (cell, pooling, True)
        for cell in ("lstm", "gru", "rnn")
        for pooling in ("last", "mean", "max")
    ),
    ("lstm", "per-step", True),  # a class for every step, read in both directions
    ("rnn", "per-step", True),
]
WHOLE_IDS = [f"{c}-{p}-{'bi' if b else 'uni'}" for c, p, b in WHOLE_SEQUENCE]


@pytest.mark.parametrize(("cell", "pooling", "bidirectional"), WHOLE_SEQUENCE, ids=WHOLE_IDS)
def test_whole_sequence_torch_batch_invariance(
    cell: str, pooling: str, bidirectional: bool, models: ModelCache
) -> None:
    checkpoint, _ = models.get(cell, pooling, bidirectional)
    model = torch_model(checkpoint)
    assert model.config.bidirectional == bidirectional and model.config.layers == 2
    rng = np.random.default_rng(7)
    rows = [rng.integers(1, 20, n) for n in (9, 1, 5, 13, 2)]  # longest row is not first
    for fill in (0, 19):  # whatever the padding holds, it must not matter
        together = torch_probabilities(model, rows, fill)
        for row, got in zip(rows, together, strict=True):
            alone = torch_probabilities(model, [row], fill)[0]
            assert max_diff(got, alone) <= TOLERANCE


@pytest.mark.parametrize(("cell", "pooling", "bidirectional"), WHOLE_SEQUENCE, ids=WHOLE_IDS)
def test_whole_sequence_onnx_batch_invariance(
    cell: str, pooling: str, bidirectional: bool, models: ModelCache
) -> None:
    checkpoint, model_path = models.get(cell, pooling, bidirectional)
    classifier = load_classifier(model_path, device="cpu")
    manifest = classifier.manifest
    assert manifest.architecture["graph"] == "lengths"
    assert manifest.states == [] and not classifier.streams
    report = manifest.validation["fp32"]
    assert report["batch_invariance"]["passed"] is True
    assert report["batch_invariance"]["max_abs_diff"] <= TOLERANCE
    assert report["parity"]["passed"] is True

    together = classifier.classify(TEXTS)
    model = torch_model(checkpoint)
    for text, prediction in zip(TEXTS, together, strict=True):
        alone = classifier.classify([text])[0]
        assert max_diff(prediction.probabilities, alone.probabilities) <= TOLERANCE
        assert prediction.label == alone.label
        # and the graph agrees with torch on the same token ids
        ids = classifier.encode(text)
        expected = torch_probabilities(model, [ids], 0)[0]
        assert max_diff(alone.probabilities, expected) <= 1e-4
    if pooling == "per-step":
        lengths = [len(classifier.encode(t)) for t in TEXTS]
        assert [p.probabilities.shape for p in together] == [(n, 2) for n in lengths]
        assert all(len(p.extra["steps"]) == n for p, n in zip(together, lengths, strict=True))


@pytest.mark.parametrize(
    ("cell", "pooling", "bidirectional"),
    [("lstm", "last", True), ("lstm", "per-step", True)],
    ids=["bidirectional", "bidirectional-per-step"],
)
def test_whole_sequence_models_cannot_stream(
    cell: str, pooling: str, bidirectional: bool, models: ModelCache
) -> None:
    _, model_path = models.get(cell, pooling, bidirectional)
    classifier = load_classifier(model_path, device="cpu")
    with pytest.raises(Exception, match="cannot classify step by step"):
        list(classifier.stream(TEXTS[0]))


# --------------------------------------------------------------------------------------
# Streaming step graphs (unidirectional: last, mean, max or per-step pooling)
# --------------------------------------------------------------------------------------

STEP_MODELS = [
    ("lstm", "last"),
    ("gru", "last"),
    ("rnn", "last"),
    ("gru", "per-step"),
    ("lstm", "mean"),  # the running sum and step count stream with the state
    ("rnn", "mean"),
    ("gru", "max"),  # the running max of the shifted outputs streams with the state
    ("lstm", "max"),
]
STEP_IDS = [f"{c}-{p}" for c, p in STEP_MODELS]


@pytest.mark.parametrize(("cell", "pooling"), STEP_MODELS, ids=STEP_IDS)
def test_step_graph_manifest(cell: str, pooling: str, models: ModelCache) -> None:
    _, model_path = models.get(cell, pooling, False)
    classifier = load_classifier(model_path, device="cpu")
    manifest = classifier.manifest
    assert manifest.architecture["graph"] == "step" and classifier.streams
    pooling_states = {"mean": 2, "max": 1}.get(pooling, 0)
    assert len(manifest.states) == (2 if cell == "lstm" else 1) + pooling_states
    assert manifest.validation["fp32"]["rollout"]["passed"] is True
    assert manifest.validation["fp32"]["parity"]["passed"] is True


@pytest.mark.parametrize(("cell", "pooling"), STEP_MODELS, ids=STEP_IDS)
def test_stream_matches_classify(cell: str, pooling: str, models: ModelCache) -> None:
    checkpoint, model_path = models.get(cell, pooling, False)
    classifier = load_classifier(model_path, device="cpu")
    batched = classifier.classify(TEXTS)  # padded after each row's end
    for text, prediction in zip(TEXTS, batched, strict=True):
        steps = np.stack(list(classifier.stream(text)))  # [T, C]
        assert len(steps) == len(classifier.encode(text))
        if pooling == "per-step":
            assert max_diff(steps, prediction.probabilities) <= TOLERANCE
        else:
            assert max_diff(steps[-1], prediction.probabilities) <= TOLERANCE
        # The streamed answer is the whole-input answer torch gives (lengths forward).
        ids = classifier.encode(text)
        expected = torch_probabilities(torch_model(checkpoint), [ids], 0)[0]
        assert max_diff(steps if pooling == "per-step" else steps[-1], expected) <= 1e-4
        alone = classifier.classify([text])[0]
        assert max_diff(alone.probabilities, prediction.probabilities) <= TOLERANCE


@pytest.mark.parametrize(("cell", "pooling"), STEP_MODELS, ids=STEP_IDS)
def test_rollout_equals_one_call(cell: str, pooling: str, models: ModelCache) -> None:
    _, model_path = models.get(cell, pooling, False)
    classifier = load_classifier(model_path, device="cpu")
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, 20, (3, 12), dtype=np.int64)
    start = {
        name: rng.standard_normal(value.shape).astype(np.float32) * 0.5
        for name, value in classifier.initial_state(3).items()
    }
    whole, whole_state = classifier.run(tokens, start)
    state, steps = start, []
    for t in range(tokens.shape[1]):
        logits, state = classifier.run(tokens[:, t : t + 1], state)
        steps.append(logits)
    assert max_diff(np.concatenate(steps, axis=1), whole) <= TOLERANCE
    assert state.keys() == whole_state.keys()
    for name in state:
        assert max_diff(state[name], whole_state[name]) <= TOLERANCE


def test_max_pooled_step_graph_reduces_to_int8_but_refuses_fp16(models: ModelCache) -> None:
    """The running max is an ONNX Loop: int8 quantization keeps it working; onnxruntime's
    fp16 converter breaks it, so fp16 is refused in one line instead of writing a bad file."""
    _, model_path = models.get("lstm", "max", False)
    fp32 = model_path.read_bytes()
    assert "Loop" in {node.op_type for node in onnx.load_from_string(fp32).graph.node}
    with pytest.raises(InputError, match="fp16 export of a graph with an ONNX Loop"):
        convert_fp16(fp32)
    feeds = {"tokens": np.array([[3, 4, 5, 6]], dtype=np.int64)}
    feeds |= load_classifier(model_path, device="cpu").initial_state(1)
    fp32_logits = ort.InferenceSession(fp32).run(["logits"], feeds)[0]
    int8_logits = ort.InferenceSession(quantize_int8(fp32)).run(["logits"], feeds)[0]
    assert int8_logits.shape == fp32_logits.shape == (1, 4, 3)
    assert max_diff(int8_logits, fp32_logits) < 0.1  # weights rounded, the same computation


def test_load_picks_classifier_by_manifest(models: ModelCache) -> None:
    _, model_path = models.get("lstm", "last", False)
    runtime = load(model_path, device="cpu")
    assert isinstance(runtime, Classifier)
    assert runtime.labels == ["a", "b", "c"]


def test_top_k_is_sorted_and_complete(models: ModelCache) -> None:
    _, model_path = models.get("lstm", "last", True)
    classifier = load_classifier(model_path, device="cpu")
    prediction = classifier.classify([TEXTS[0]], top=5)[0]
    assert len(prediction.top) == 3  # only three labels exist
    probabilities = [p for _, p in prediction.top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    assert prediction.top[0] == (prediction.label, prediction.probability)


# --------------------------------------------------------------------------------------
# Binary addition through the command line
# --------------------------------------------------------------------------------------


def train_and_export(folder: Path, name: str, *train_args: Any) -> Path:
    """`rnnedge train …` into folder/run, then export its best checkpoint to folder/name."""
    succeeded(invoke("train", *train_args, "--out", folder / "run"))
    model = folder / name
    succeeded(invoke("export", folder / "run" / "best.pt", "-o", model))
    return model


@pytest.fixture(scope="session")
def add_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_and_export(tmp_path_factory.mktemp("add"), "add.onnx", "add", "--steps", "400")


def test_add_int8_needs_no_heldout_data_and_stays_exact(add_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "add-int8.onnx"
    succeeded(
        invoke("export", add_model.parent / "run" / "best.pt", "-o", out, "--quantize", "int8")
    )
    quality = load_classifier(out).manifest.validation["quality"]
    assert quality["heldout_examples"] > 1000 and quality["accuracy_int8"] > 0.99
    metrics = json.loads(succeeded(invoke("eval", out, "--add", "300", "--json")).stdout)
    assert metrics["exact"] > 0.95


def test_add_eval_is_exact(add_model: Path) -> None:
    metrics = json.loads(succeeded(invoke("eval", add_model, "--add", "500", "--json")).stdout)
    assert metrics["exact"] == 1.0
    assert metrics["accuracy"] == 1.0
    assert metrics["examples"] == 500
    assert metrics["count"] == 500 * 9  # 8 bits + the carry


def test_add_infer_gives_sums(add_model: Path) -> None:
    result = succeeded(invoke("infer", "classify", add_model, "23+19", "200+55", "--json"))
    lines = json_lines(result)
    assert [(line["input"], line["sum"]) for line in lines] == [("23+19", 42), ("200+55", 255)]
    assert lines[0]["label"] == "42"
    assert "".join(lines[1]["steps"]) == "111111110"  # 255, LSB first, no carry


def test_add_extremes(add_model: Path) -> None:
    classifier = load_classifier(add_model, device="cpu")
    cases = ["0+0", "255+255", "255+1", "128+128", " 7 + 9 "]
    sums = [p.extra["sum"] for p in classifier.classify(cases)]
    assert sums == [0, 510, 256, 256, 16]


def test_add_stream_gives_a_line_per_step(add_model: Path) -> None:
    result = succeeded(invoke("infer", "classify", add_model, "23+19", "--stream", "--json"))
    lines = json_lines(result)
    assert [line["step"] for line in lines] == list(range(1, 10))
    bits = [max(line["probabilities"], key=line["probabilities"].get) for line in lines]
    assert int("".join(reversed(bits)), 2) == 42
    for line in lines:
        assert sum(line["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_add_stream_equals_batched_steps(add_model: Path) -> None:
    classifier = load_classifier(add_model, device="cpu")
    batched = classifier.classify(["23+19", "3+4", "250+9"])
    for item, prediction in zip(["23+19", "3+4", "250+9"], batched, strict=True):
        steps = np.stack(list(classifier.stream(item)))
        assert max_diff(steps, prediction.probabilities) <= TOLERANCE


def test_encode_addition_layout() -> None:
    features = encode_addition("6+3", 4)  # 6 = 0110, 3 = 0011
    assert features.shape == (5, 2) and features.dtype == np.float32
    assert features[:, 0].tolist() == [0, 1, 1, 0, 0]
    assert features[:, 1].tolist() == [1, 1, 0, 0, 0]


# --------------------------------------------------------------------------------------
# Image rows (IDX) through the command line
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """60 images of 6 rows × 5 columns; class k lights rows 2k and 2k + 1."""
    folder = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    pixels = rng.integers(0, 40, (60, 6, 5))
    for i, k in enumerate(labels):
        pixels[i, 2 * k : 2 * k + 2] = 255
    return write_idx(folder / "images-idx3-ubyte", pixels), write_idx(folder / "labels", labels)


@pytest.fixture(scope="session")
def image_model(images: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    image_file, label_file = images
    return train_and_export(
        tmp_path_factory.mktemp("image-model"),
        "rows.onnx",
        "sequence",
        "--images",
        image_file,
        "--labels",
        label_file,
        "--test-images",
        image_file,
        "--test-labels",
        label_file,
        "--steps",
        "60",
        "--hidden",
        "8",
        "--eval-every",
        "30",
        "--threads",
        "1",
        "--batch-size",
        "16",
    )


def test_image_model_manifest(image_model: Path) -> None:
    classifier = load_classifier(image_model, device="cpu")
    assert classifier.labels == ["0", "1", "2"]
    assert classifier.manifest.inputs[0].name == "features"
    assert classifier.manifest.inputs[0].shape[-1] == 5  # a step is one row of 5 pixels
    assert classifier.preprocessing["kind"] == "image-rows"
    assert (classifier.preprocessing["rows"], classifier.preprocessing["cols"]) == (6, 5)
    assert classifier.streams


def test_image_infer_first_n(image_model: Path, images: tuple[Path, Path]) -> None:
    image_file, _ = images
    result = succeeded(
        invoke("infer", "classify", image_model, "--images", image_file, "--first", "3", "--json")
    )
    lines = json_lines(result)
    assert [line["input"] for line in lines] == [f"{image_file.name}[{i}]" for i in range(3)]
    assert all(line["label"] in ("0", "1", "2") for line in lines)
    assert all(0.0 < line["probability"] <= 1.0 for line in lines)
    # the command line scales pixels as training did: the same answers as the library
    classifier = load_classifier(image_model, device="cpu")
    from rnnedge.datasets import read_idx

    pixels = read_idx(image_file)[:3].astype(np.float32) / 255.0
    expected = classifier.classify(list(pixels))
    assert [p.label for p in expected] == [line["label"] for line in lines]
    for p, line in zip(expected, lines, strict=True):
        assert line["probability"] == pytest.approx(p.probability, abs=1e-6)


def test_image_stream_plot(image_model: Path, images: tuple[Path, Path], tmp_path: Path) -> None:
    image_file, _ = images
    plot = tmp_path / "steps.png"
    result = succeeded(
        invoke(
            "infer",
            "classify",
            image_model,
            "--images",
            image_file,
            "--first",
            "1",
            "--stream",
            "--plot",
            plot,
            "--json",
        )
    )
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = json_lines(result)
    assert [line["step"] for line in lines] == list(range(1, 7))  # one step per image row
    assert all(set(line["probabilities"]) == {"0", "1", "2"} for line in lines)
    batched = invoke(
        "infer", "classify", image_model, "--images", image_file, "--first", "1", "--json"
    )
    final = json_lines(succeeded(batched))[0]
    last = lines[-1]["probabilities"]
    assert max(last, key=last.get) == final["label"]
    assert last[final["label"]] == pytest.approx(final["probability"], abs=1e-5)


def test_image_eval(image_model: Path, images: tuple[Path, Path]) -> None:
    image_file, label_file = images
    metrics = json.loads(
        succeeded(
            invoke("eval", image_model, "--images", image_file, "--labels", label_file, "--json")
        ).stdout
    )
    assert metrics["examples"] == 60 and metrics["count"] == 60
    confusion = np.array(metrics["confusion"])
    assert confusion.shape == (3, 3) and confusion.sum() == 60
    assert confusion.sum(1).tolist() == [20, 20, 20]
    assert metrics["accuracy"] == pytest.approx(np.trace(confusion) / 60)
    # the trainer scored the same images with torch when it kept best.pt
    manifest = load_classifier(image_model, device="cpu").manifest
    assert metrics["accuracy"] == pytest.approx(
        manifest.training["best_valid_accuracy"], abs=1.5 / 60
    )


# --------------------------------------------------------------------------------------
# Text through the command line
# --------------------------------------------------------------------------------------

POSITIVE = ["great", "superb", "loved", "wonderful", "moving"]
NEGATIVE = ["awful", "boring", "hated", "dull", "weak"]
FILLER = ["the", "film", "was", "plot", "acting", "and", "really"]


def review(rng: np.random.Generator, positive: bool) -> str:
    words = list(rng.choice(FILLER, int(rng.integers(2, 6))))
    words.insert(
        int(rng.integers(0, len(words) + 1)), rng.choice(POSITIVE if positive else NEGATIVE)
    )
    return " ".join(words)


@pytest.fixture(scope="session")
def text_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("text")
    rng = np.random.default_rng(0)
    rows = ["id,review,sentiment"]
    for i in range(80):
        positive = bool(i % 2)
        rows.append(f"{i},{review(rng, positive)},{'pos' if positive else 'neg'}")
    table = folder / "reviews.csv"
    table.write_text("\n".join(rows) + "\n")
    folders = folder / "folders"
    for label in ("pos", "neg"):
        (folders / label).mkdir(parents=True)
        for i in range(30):
            (folders / label / f"{i}.txt").write_text(review(rng, label == "pos"))
    return {"table": table, "folders": folders}


TEXT_TRAIN = [
    "--steps",
    "30",
    "--eval-every",
    "15",
    "--hidden",
    "8",
    "--embed-dim",
    "8",
    "--threads",
    "1",
]


def review_table(text_data: dict[str, Path]) -> list[Any]:
    """The options that read the reviews table."""
    table = text_data["table"]
    return ["--table", table, "--text-column", "review", "--label-column", "sentiment"]


@pytest.fixture(scope="session")
def word_model(text_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_and_export(
        tmp_path_factory.mktemp("word-model"),
        "words.onnx",
        "classify",
        *review_table(text_data),
        "--tokenizer",
        "word",
        "--max-vocab",
        "50",
        "--bidirectional",
        *TEXT_TRAIN,
    )


def test_int8_text_classifier_records_its_accuracy_change(
    word_model: Path, text_data: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "words-int8.onnx"
    checkpoint = word_model.parent / "run" / "best.pt"
    result = invoke(
        "export", checkpoint, "-o", out, "--quantize", "int8", "--heldout", text_data["table"]
    )
    assert "held-out accuracy: fp32" in succeeded(result).stdout
    classifier = load_classifier(out)
    validation, export = classifier.manifest.validation, classifier.manifest.export
    quality = validation["quality"]
    assert quality["heldout_examples"] == 80
    assert quality["accuracy_change_points"] == pytest.approx(
        100 * (quality["accuracy_int8"] - quality["accuracy_fp32"])
    )
    assert validation["int8"]["agreement"]["passed"]
    assert export["quantization"].startswith("int8") and export["fp32_size_bytes"] > 0
    # The LSTM really is quantized, and the int8 file still classifies through the CLI.
    assert b"DynamicQuantizeLSTM" in out.read_bytes()
    metrics = json.loads(succeeded(invoke("eval", out, *review_table(text_data), "--json")).stdout)
    assert metrics["accuracy"] == pytest.approx(quality["accuracy_int8"])


@pytest.mark.parametrize(
    "fixture, source, examples", [("word_model", "table", 80), ("char_model", "folders", 60)]
)
def test_fp16_text_classifier_records_its_accuracy_change(
    fixture: str,
    source: str,
    examples: int,
    text_data: dict[str, Path],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    model = request.getfixturevalue(fixture)
    out = tmp_path / "fp16.onnx"
    checkpoint = model.parent / "run" / "best.pt"
    heldout = text_data[source]
    result = invoke("export", checkpoint, "-o", out, "--fp16", "--heldout", heldout)
    assert "held-out accuracy: fp32" in succeeded(result).stdout
    classifier = load_classifier(out)
    validation, export = classifier.manifest.validation, classifier.manifest.export
    quality = validation["quality"]
    assert quality["heldout_examples"] == examples and validation["fp16"]["agreement"]["passed"]
    assert quality["accuracy_change_points"] == pytest.approx(
        100 * (quality["accuracy_fp16"] - quality["accuracy_fp32"])
    )
    assert export["precision"] == "fp16" and export["fp32_size_bytes"] > 0
    source_args = review_table(text_data) if source == "table" else ["--folders", heldout]
    metrics = json.loads(succeeded(invoke("eval", out, *source_args, "--json")).stdout)
    assert metrics["accuracy"] == pytest.approx(quality["accuracy_fp16"])


@pytest.fixture(scope="session")
def char_model(text_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_and_export(
        tmp_path_factory.mktemp("char-model"),
        "chars.onnx",
        "classify",
        "--folders",
        text_data["folders"],
        "--tokenizer",
        "char",
        *TEXT_TRAIN,
    )


def test_word_model_manifest(word_model: Path) -> None:
    info = json.loads(succeeded(invoke("inspect", word_model, "--json")).stdout)
    manifest = info["manifest"]
    assert manifest["task"] == "classification"
    assert manifest["labels"] == ["neg", "pos"]
    assert manifest["architecture"]["bidirectional"] is True
    assert manifest["architecture"]["graph"] == "lengths"
    assert manifest["tokenizer"]["kind"] == "word"
    assert len(manifest["tokenizer"]["vocab"]) <= 50
    assert manifest["validation"]["fp32"]["batch_invariance"]["passed"] is True
    table = succeeded(invoke("inspect", word_model)).stdout
    accuracy = manifest["training"]["best_valid_accuracy"]
    assert f"held-out accuracy {accuracy:.4f}" in table and "bits/char" not in table
    assert "bidirectional LSTM" in table and "last pooling" in table


def test_word_model_infer(word_model: Path) -> None:
    texts = ["the film was great", "boring and dull acting", "unseen words only"]
    result = succeeded(invoke("infer", "classify", word_model, *texts, "--top", "2", "--json"))
    lines = json_lines(result)
    assert [line["input"] for line in lines] == texts
    for line in lines:
        assert line["label"] in ("neg", "pos")
        assert line["top"][0]["label"] == line["label"]
        assert sorted(t["label"] for t in line["top"]) == ["neg", "pos"]
        assert sum(t["probability"] for t in line["top"]) == pytest.approx(1.0, abs=1e-5)


def test_word_model_infer_from_file(word_model: Path, tmp_path: Path) -> None:
    file = tmp_path / "inputs.txt"
    file.write_text("the film was great\n\nboring and dull acting\n")
    result = succeeded(invoke("infer", "classify", word_model, "--file", file, "--json"))
    assert [line["input"] for line in json_lines(result)] == [
        "the film was great",
        "boring and dull acting",
    ]


def test_word_model_table_output(word_model: Path) -> None:
    result = succeeded(invoke("infer", "classify", word_model, "the plot was superb"))
    assert "pos" in result.stdout or "neg" in result.stdout


def test_word_model_eval_table(word_model: Path, text_data: dict[str, Path]) -> None:
    args = ["--text-column", "review", "--label-column", "sentiment", "--json"]
    metrics = json.loads(
        succeeded(invoke("eval", word_model, "--table", text_data["table"], *args)).stdout
    )
    assert metrics["examples"] == 80
    confusion = np.array(metrics["confusion"])
    assert confusion.sum(1).tolist() == [40, 40]  # rows: truth (neg, pos)
    assert metrics["accuracy"] == pytest.approx(np.trace(confusion) / 80)
    assert 0.0 <= metrics["macro_f1"] <= 1.0


def test_char_model(char_model: Path, text_data: dict[str, Path]) -> None:
    classifier = load_classifier(char_model, device="cpu")
    assert classifier.manifest.tokenizer["kind"] == "char"
    assert classifier.labels == ["neg", "pos"]
    assert classifier.streams  # unidirectional, last: a step graph
    # a character the training texts never had is replaced, not refused
    result = succeeded(
        invoke("infer", "classify", char_model, "the film was great", "Ωmega €", "--json")
    )
    assert [line["label"] in ("neg", "pos") for line in json_lines(result)] == [True, True]
    metrics = json.loads(
        succeeded(invoke("eval", char_model, "--folders", text_data["folders"], "--json")).stdout
    )
    assert metrics["examples"] == 60
    assert np.array(metrics["confusion"]).sum() == 60


def test_char_model_stream(char_model: Path) -> None:
    result = succeeded(invoke("infer", "classify", char_model, "great film", "--stream", "--json"))
    lines = json_lines(result)
    assert len(lines) == len("great film")
    batched = load_classifier(char_model, device="cpu").classify(["great film"])[0]
    final = lines[-1]["probabilities"]
    assert final[batched.label] == pytest.approx(batched.probability, abs=1e-5)


def test_char_model_stream_bars_show_what_each_step_read(char_model: Path) -> None:
    result = succeeded(invoke("infer", "classify", char_model, "gr8", "--stream"))
    unknown = load_classifier(char_model, device="cpu").tokenizer.unk_token  # '8' is unseen
    assert [line.split()[:3] for line in result.stdout.splitlines()] == [
        ["step", "1", "g"],
        ["step", "2", "r"],
        ["step", "3", unknown],
    ]


@pytest.mark.parametrize("fixture", ["char_model", "word_model", "add_model", "image_model"])
def test_bench_measures_classifiers_in_their_own_input_kind(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    model = request.getfixturevalue(fixture)
    report = json.loads(succeeded(invoke("bench", model, "--json")).stdout)
    assert set(report["classify"]) == {"1", "64"}
    assert all(figures["sequences_per_s"] > 0 for figures in report["classify"].values())
    assert "batch 64" in succeeded(invoke("bench", model)).stdout


def test_checkpoint_carries_what_export_needs(word_model: Path) -> None:
    payload = load_checkpoint(word_model.parent / "run" / "best.pt")
    assert payload["task"] == "classification"
    assert payload["labels"] == ["neg", "pos"]
    assert payload["model_config"]["bidirectional"] is True
    assert payload["tokenizer"]["kind"] == "word"
