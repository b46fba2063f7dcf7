"""The classifier commands on bad input: one `error:` line naming the problem, a non-zero
exit, no traceback (train classify|sequence, infer classify, eval, export).

The classifiers here are trained for a couple of steps: only their shapes matter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import error_line, invoke, succeeded, write_idx

QUICK = ["--steps", "2", "--eval-every", "1", "--hidden", "4", "--threads", "1"]


# --------------------------------------------------------------------------------------
# Fixtures: data files and three tiny classifiers (addition, image rows, text)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("classifier-data")
    rng = np.random.default_rng(0)
    table = folder / "reviews.csv"
    table.write_text(
        "review,sentiment\n"
        + "".join(f"great film {i},pos\nawful film {i},neg\n" for i in range(10))
    )
    (folder / "empty.csv").write_text("")
    (folder / "empty.jsonl").write_text("")
    return {
        "table": table,
        "empty.csv": folder / "empty.csv",
        "empty.jsonl": folder / "empty.jsonl",
        "images": write_idx(folder / "images", rng.integers(0, 256, (12, 6, 5))),
        "labels": write_idx(folder / "labels", np.arange(12) % 3),
        "wide": write_idx(folder / "wide-images", rng.integers(0, 256, (4, 6, 7))),
        "folder": folder,
    }


@pytest.fixture(scope="module")
def add_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("add-model")
    succeeded(invoke("train", "add", "--out", folder / "run", "--train-examples", "64", *QUICK))
    succeeded(invoke("export", folder / "run" / "last.pt", "-o", folder / "add.onnx"))
    return folder / "add.onnx"


@pytest.fixture(scope="module")
def image_run(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("image-run") / "run"
    files = ["--images", data["images"], "--labels", data["labels"]]
    tests = ["--test-images", data["images"], "--test-labels", data["labels"]]
    succeeded(invoke("train", "sequence", *files, *tests, "--out", out, *QUICK))
    return out


@pytest.fixture(scope="module")
def image_model(image_run: Path) -> Path:
    model = image_run.parent / "rows.onnx"
    succeeded(invoke("export", image_run / "last.pt", "-o", model))
    return model


@pytest.fixture(scope="module")
def text_model(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("text-model")
    columns = ["--text-column", "review", "--label-column", "sentiment"]
    args = ["--table", data["table"], *columns, "--bidirectional", "--embed-dim", "4"]
    succeeded(invoke("train", "classify", *args, "--out", folder / "run", *QUICK))
    succeeded(invoke("export", folder / "run" / "last.pt", "-o", folder / "text.onnx"))
    return folder / "text.onnx"


# --------------------------------------------------------------------------------------
# train classify / sequence
# --------------------------------------------------------------------------------------


def test_train_classify_unknown_label_column(data: dict[str, Path], tmp_path: Path) -> None:
    args = ["--table", data["table"], "--text-column", "review", "--label-column", "nope"]
    result = invoke("train", "classify", *args, "--out", tmp_path / "run", *QUICK)
    error_line(result, "'nope'", "--label-column", "review", "sentiment")
    assert not (tmp_path / "run").exists()


def test_train_classify_unknown_text_column(data: dict[str, Path], tmp_path: Path) -> None:
    args = ["--table", data["table"], "--label-column", "sentiment"]  # --text-column: "text"
    result = invoke("train", "classify", *args, "--out", tmp_path / "run", *QUICK)
    error_line(result, "'text'", "--text-column", "review")


@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl"])
def test_train_classify_empty_table(name: str, data: dict[str, Path], tmp_path: Path) -> None:
    result = invoke("train", "classify", "--table", data[name], "--out", tmp_path / "run", *QUICK)
    error_line(result, str(data[name]), "empty")


def test_train_classify_two_sources(data: dict[str, Path], tmp_path: Path) -> None:
    args = ["--table", data["table"], "--folders", data["folder"]]
    result = invoke("train", "classify", *args, "--out", tmp_path / "run", *QUICK)
    error_line(result, "exactly one data source", "--folders", "--table")


def test_train_classify_no_source(tmp_path: Path) -> None:
    result = invoke("train", "classify", "--out", tmp_path / "run", *QUICK)
    error_line(result, "exactly one data source")


def test_train_classify_bad_tokenizer(data: dict[str, Path], tmp_path: Path) -> None:
    columns = ["--text-column", "review", "--label-column", "sentiment"]
    args = ["--table", data["table"], *columns, "--tokenizer", "bpe"]
    result = invoke("train", "classify", *args, "--out", tmp_path / "run", *QUICK)
    error_line(result, "--tokenizer", "'bpe'")


def test_train_classify_bad_pooling(data: dict[str, Path], tmp_path: Path) -> None:
    columns = ["--text-column", "review", "--label-column", "sentiment"]
    args = ["--table", data["table"], *columns, "--pooling", "attention"]
    result = invoke("train", "classify", *args, "--out", tmp_path / "run", *QUICK)
    error_line(result, "--pooling", "'attention'")


def test_train_classify_folder_with_one_label(tmp_path: Path) -> None:
    (tmp_path / "data" / "pos").mkdir(parents=True)
    (tmp_path / "data" / "pos" / "a.txt").write_text("good")
    args = ["--folders", tmp_path / "data", "--out", tmp_path / "run", *QUICK]
    result = invoke("train", "classify", *args)
    error_line(result, "at least two label sub-folders")


def test_train_sequence_missing_idx(data: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "train-images-idx3-ubyte"
    args = ["--images", missing, "--labels", data["labels"]]
    tests = ["--test-images", data["images"], "--test-labels", data["labels"]]
    result = invoke("train", "sequence", *args, *tests, "--out", tmp_path / "run", *QUICK)
    error_line(result, str(missing), "does not exist")
    assert not (tmp_path / "run").exists()


def test_train_sequence_labels_do_not_match_images(data: dict[str, Path], tmp_path: Path) -> None:
    short = write_idx(tmp_path / "labels", [0, 1, 2])
    args = ["--images", data["images"], "--labels", short]
    tests = ["--test-images", data["images"], "--test-labels", data["labels"]]
    result = invoke("train", "sequence", *args, *tests, "--out", tmp_path / "run", *QUICK)
    error_line(result, "3 labels for 12 images")


def test_train_sequence_text_file_is_not_idx(data: dict[str, Path], tmp_path: Path) -> None:
    args = ["--images", data["table"], "--labels", data["labels"]]
    tests = ["--test-images", data["images"], "--test-labels", data["labels"]]
    result = invoke("train", "sequence", *args, *tests, "--out", tmp_path / "run", *QUICK)
    error_line(result, "not an IDX file")


# --------------------------------------------------------------------------------------
# infer
# --------------------------------------------------------------------------------------


def test_infer_classify_of_language_model(tiny_model: Path) -> None:
    result = invoke("infer", "classify", tiny_model, "some text")
    error_line(result, "language-model", "rnnedge infer generate")
    assert result.stdout == ""


def test_infer_generate_of_classifier(add_model: Path) -> None:
    result = invoke("infer", "generate", add_model, "--prompt", "1+1")
    error_line(result, "classification", "rnnedge infer classify")
    assert result.stdout == ""


def test_infer_images_of_wrong_width(image_model: Path, data: dict[str, Path]) -> None:
    result = invoke("infer", "classify", image_model, "--images", data["wide"], "--first", "2")
    error_line(result, "[steps, 5]", "[6, 7]")


@pytest.mark.parametrize("first", ["0", "-1"])
def test_infer_images_first_below_one(first: str, image_model: Path, data: dict[str, Path]) -> None:
    # --first -1 must not mean "all but the last image".
    result = invoke("infer", "classify", image_model, "--images", data["images"], "--first", first)
    error_line(result)
    assert result.stdout == ""


def test_infer_stream_plot_into_missing_folder(add_model: Path, tmp_path: Path) -> None:
    plot = tmp_path / "no-such-folder" / "steps.png"
    result = invoke("infer", "classify", add_model, "1+2", "--stream", "--plot", plot)
    error_line(result, str(plot))


def test_infer_labels_file_as_images(image_model: Path, data: dict[str, Path]) -> None:
    result = invoke("infer", "classify", image_model, "--images", data["labels"])
    error_line(result, "[steps, 5]")


def test_infer_text_into_image_model(image_model: Path) -> None:
    # A text for a model that reads feature vectors: an error, not a float() ValueError.
    error_line(invoke("infer", "classify", image_model, "hello"), "[steps, 5]")


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ("300+1", ["'300+1'", "0..255", "8-bit"]),
        ("256+0", ["0..255"]),
        ("-1+2", ["0..255"]),
        ("abc", ["'abc'", "a+b"]),
        ("1+2+3", ["a+b"]),
        ("1.5+2", ["a+b"]),
    ],
)
def test_infer_add_bad_input(item: str, words: list[str], add_model: Path) -> None:
    result = invoke("infer", "classify", add_model, "--json", "--", item)  # "--": "-1+2"
    error_line(result, *words)
    assert result.stdout == ""


def test_infer_add_one_bad_input_among_good(add_model: Path) -> None:
    result = invoke("infer", "classify", add_model, "1+2", "300+1", "--json")
    error_line(result, "'300+1'")
    assert result.stdout == ""  # no partial answers


def test_infer_stream_two_inputs(add_model: Path) -> None:
    result = invoke("infer", "classify", add_model, "1+2", "3+4", "--stream")
    error_line(result, "--stream", "exactly one input", "2")


def test_infer_stream_of_whole_sequence_model(text_model: Path) -> None:
    result = invoke("infer", "classify", text_model, "great film", "--stream")
    error_line(result, "bidirectional", "step by step")


@pytest.mark.parametrize("top", ["0", "-1"])
def test_infer_top_below_one(top: str, text_model: Path) -> None:
    error_line(invoke("infer", "classify", text_model, "great film", "--top", top), "--top")


def test_infer_nothing_to_classify(text_model: Path) -> None:
    error_line(invoke("infer", "classify", text_model), "nothing to classify")


def test_infer_empty_input_file(text_model: Path, tmp_path: Path) -> None:
    empty = tmp_path / "inputs.txt"
    empty.write_text("")
    error_line(invoke("infer", "classify", text_model, "--file", empty), str(empty), "empty")


def test_infer_text_without_known_token(text_model: Path) -> None:
    # Punctuation is a token, so the word tokenizer yields ids for any non-blank text; a
    # blank one has no token at all.
    error_line(invoke("infer", "classify", text_model, "   "), "no token")


def test_infer_missing_model(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.onnx"
    error_line(invoke("infer", "classify", missing, "x"), str(missing), "does not exist")


# --------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------


def test_eval_classifier_without_source(text_model: Path) -> None:
    error_line(invoke("eval", text_model), "exactly one evaluation source")


def test_eval_classifier_two_sources(text_model: Path, data: dict[str, Path]) -> None:
    args = ["--table", data["table"], "--folders", data["folder"]]
    error_line(invoke("eval", text_model, *args), "exactly one evaluation source")


def test_eval_add_on_other_model(text_model: Path) -> None:
    error_line(invoke("eval", text_model, "--add", "10"), "--add", "binary-addition")


def test_eval_images_without_labels(image_model: Path, data: dict[str, Path]) -> None:
    error_line(invoke("eval", image_model, "--images", data["images"]), "--labels")


def test_eval_table_unknown_column(text_model: Path, data: dict[str, Path]) -> None:
    args = ["--table", data["table"], "--text-column", "review", "--label-column", "stars"]
    error_line(invoke("eval", text_model, *args), "'stars'", "sentiment")


def test_eval_table_label_unknown_to_model(text_model: Path, tmp_path: Path) -> None:
    table = tmp_path / "test.csv"
    table.write_text("review,sentiment\ngreat,pos\nso so,neutral\n")
    args = ["--table", table, "--text-column", "review", "--label-column", "sentiment"]
    error_line(invoke("eval", text_model, *args), "neutral", "model's labels")


def test_eval_images_with_labels_beyond_model(image_model: Path, tmp_path: Path) -> None:
    # Label 7 for a three-class model: an error naming the label, not an IndexError.
    images = write_idx(tmp_path / "images", np.zeros((3, 6, 5)))
    labels = write_idx(tmp_path / "labels", [0, 7, 1])
    error_line(invoke("eval", image_model, "--images", images, "--labels", labels), "7")


def test_eval_language_model_with_classifier_source(
    tiny_model: Path, data: dict[str, Path]
) -> None:
    error_line(invoke("eval", tiny_model, "--table", data["table"]), "--text")


# --------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "precision, flags", [("int8", ("--quantize", "int8")), ("fp16", ("--fp16",))]
)
def test_export_classifier_reduced_precision_without_heldout_data(
    precision: str, flags: tuple[str, ...], image_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = invoke("export", image_run / "last.pt", "-o", out / "x.onnx", *flags)
    error_line(result, f"{precision} export", "--heldout", "accuracy change")
    assert list(out.iterdir()) == []


def test_export_image_classifier_int8_without_labels_beside(
    image_run: Path, tmp_path: Path
) -> None:
    images = write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 6, 5)))
    out = tmp_path / "x.onnx"
    result = invoke(
        "export", image_run / "last.pt", "-o", out, "--quantize", "int8", "--heldout", images
    )
    error_line(result, "t10k-labels-idx1-ubyte", "beside")
    assert not out.exists()
    table = tmp_path / "rows.jsonl"
    table.write_text('{"text": "x", "label": "a"}\n')
    result = invoke(
        "export", image_run / "last.pt", "-o", out, "--quantize", "int8", "--heldout", table
    )
    error_line(result, "not an IDX images file", "--heldout")
    assert not out.exists()
