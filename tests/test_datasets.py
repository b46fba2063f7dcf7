"""The data loaders users bring their data through (folders, aclImdb, CSV/JSONL, IDX, the
addition task), the training-only tokenizer of `sources.text_sets`, and the metrics.

Every data set is written by the test into tmp_path; nothing is downloaded.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from helpers import write_idx
from rnnedge.datasets import (
    addition_examples,
    bits_to_int,
    load_aclimdb,
    load_folders,
    load_idx_images,
    load_table,
    read_idx,
)
from rnnedge.errors import InputError
from rnnedge.metrics import classification_metrics
from rnnedge.sources import text_sets
from rnnedge.tokenizer import UNK


def write_files(folder: Path, texts: dict[str, str | bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in texts.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)


# --------------------------------------------------------------------------------------
# Folder per label
# --------------------------------------------------------------------------------------


def test_folders_one_label_per_subfolder(tmp_path: Path) -> None:
    write_files(tmp_path / "spam", {"a.txt": "buy now", "b.txt": "cheap pills"})
    write_files(tmp_path / "ham", {"c.txt": "see you at lunch"})
    data = load_folders(tmp_path)
    assert data.label_names == ["ham", "spam"]  # sorted by name
    assert sorted(zip(data.texts, data.labels.tolist(), strict=True)) == [
        ("buy now", 1),
        ("cheap pills", 1),
        ("see you at lunch", 0),
    ]
    assert data.labels.dtype == np.int64
    assert data.skipped == []


def test_folders_skip_and_count_non_utf8_file(tmp_path: Path) -> None:
    write_files(tmp_path / "pos", {"good.txt": "great film", "latin1.txt": b"caf\xe9 au lait"})
    write_files(tmp_path / "neg", {"bad.txt": "dull film"})
    data = load_folders(tmp_path)
    assert sorted(data.texts) == ["dull film", "great film"]
    assert len(data.skipped) == 1
    assert "latin1.txt" in data.skipped[0] and "not UTF-8" in data.skipped[0]


def test_folders_need_two_labels(tmp_path: Path) -> None:
    write_files(tmp_path / "only", {"a.txt": "one label is no classification"})
    with pytest.raises(InputError, match="at least two label sub-folders"):
        load_folders(tmp_path)


def test_folders_path_must_be_a_folder(tmp_path: Path) -> None:
    file = tmp_path / "file.txt"
    file.write_text("not a folder")
    with pytest.raises(InputError, match="not a folder"):
        load_folders(file)


def test_folders_map_to_given_labels(tmp_path: Path) -> None:
    write_files(tmp_path / "pos", {"a.txt": "good"})
    write_files(tmp_path / "neg", {"b.txt": "bad"})
    data = load_folders(tmp_path, label_names=["pos", "neg", "neutral"])
    assert data.label_names == ["pos", "neg", "neutral"]
    assert dict(zip(data.texts, data.labels.tolist(), strict=True)) == {"good": 0, "bad": 1}


def test_folders_label_outside_given_labels(tmp_path: Path) -> None:
    write_files(tmp_path / "pos", {"a.txt": "good"})
    write_files(tmp_path / "meh", {"b.txt": "so so"})
    with pytest.raises(InputError, match="meh"):
        load_folders(tmp_path, label_names=["neg", "pos"])


# --------------------------------------------------------------------------------------
# aclImdb
# --------------------------------------------------------------------------------------


def make_aclimdb(root: Path) -> Path:
    for split in ("train", "test"):
        write_files(root / split / "pos", {"0_9.txt": f"{split} loved it", "1_8.txt": "superb"})
        write_files(root / split / "neg", {"2_1.txt": f"{split} hated it"})
        write_files(root / split, {"labeledBow.feat": "0:1 1:2\n", "urls_pos.txt": "http://x\n"})
    write_files(root / "train" / "unsup", {"3_0.txt": "unlabelled review", "4_0.txt": "another"})
    return root


def test_aclimdb_reads_pos_and_neg_and_ignores_unsup(tmp_path: Path) -> None:
    root = make_aclimdb(tmp_path / "aclImdb")
    train = load_aclimdb(root, "train")
    assert train.label_names == ["neg", "pos"]
    assert sorted(train.texts) == ["superb", "train hated it", "train loved it"]
    assert "unlabelled review" not in train.texts
    test = load_aclimdb(root, "test", train.label_names)
    assert sorted(test.texts) == ["superb", "test hated it", "test loved it"]
    assert dict(zip(test.texts, test.labels.tolist(), strict=True))["test hated it"] == 0


def test_aclimdb_without_pos_neg_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path / "train" / "good", {"a.txt": "x"})
    write_files(tmp_path / "train" / "bad", {"b.txt": "y"})
    with pytest.raises(InputError, match="aclImdb"):
        load_aclimdb(tmp_path, "train")


def test_aclimdb_missing_split_is_refused(tmp_path: Path) -> None:
    root = make_aclimdb(tmp_path / "aclImdb")
    with pytest.raises(InputError, match="pos/ and neg/"):
        load_aclimdb(root, "valid")


# --------------------------------------------------------------------------------------
# CSV and JSONL tables
# --------------------------------------------------------------------------------------


def test_csv_named_columns(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text(
        "id,review,sentiment\n"
        '1,"a fine, fine film",pos\n'
        "2,a waste of time,neg\n"
        "3,would watch again,pos\n"
    )
    data = load_table(path, "review", "sentiment")
    assert data.texts == ["a fine, fine film", "a waste of time", "would watch again"]
    assert data.label_names == ["neg", "pos"]
    assert data.labels.tolist() == [1, 0, 1]
    assert data.skipped == []


def test_csv_bad_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text(
        "review,sentiment\n"
        "good one,pos\n"
        "no label here,\n"  # missing label
        ",neg\n"  # empty text
        "   ,neg\n"  # blank text
        "bad one,neg\n"
    )
    data = load_table(path, "review", "sentiment")
    assert data.texts == ["good one", "bad one"]
    assert len(data.skipped) == 3
    assert all("missing text or label" in reason for reason in data.skipped)


def test_jsonl_named_columns_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "reviews.jsonl"
    rows = [
        json.dumps({"body": "loved it", "stars": 5}),
        "this line is not JSON",
        json.dumps({"body": "hated it", "stars": 1}),
        "",  # blank lines are not rows
        json.dumps({"body": "no stars"}),
        json.dumps({"body": "", "stars": 3}),
        json.dumps({"body": "fine", "stars": 3}),
    ]
    path.write_text("\n".join(rows) + "\n")
    data = load_table(path, "body", "stars")
    assert data.texts == ["loved it", "hated it", "fine"]
    assert data.label_names == ["1", "3", "5"]  # labels become strings
    assert data.labels.tolist() == [2, 0, 1]
    assert len(data.skipped) == 3  # the non-JSON line, the missing label, the empty text


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_table_unknown_column_lists_available_columns(suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        path.write_text("review,sentiment\ngood,pos\n")
    else:
        path.write_text(json.dumps({"review": "good", "sentiment": "pos"}) + "\n")
    with pytest.raises(InputError) as caught:
        load_table(path, "review", "label")
    message = str(caught.value)
    assert "'label'" in message and "--label-column" in message
    assert "review" in message and "sentiment" in message
    with pytest.raises(InputError, match="--text-column"):
        load_table(path, "text", "sentiment")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_table_empty_file_is_refused(suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_text("")
    with pytest.raises(InputError, match="empty"):
        load_table(path, "text", "label")


def test_csv_header_only_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("text,label\n")
    with pytest.raises(InputError, match="no data rows"):
        load_table(path, "text", "label")


def test_table_all_rows_bad_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text,label\n,pos\nsomething,\n")
    with pytest.raises(InputError, match=r"no usable examples.*2 rows skipped"):
        load_table(path, "text", "label")


def test_table_labels_mapped_to_given_list(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("text,label\nfine,pos\nawful,neg\n")
    data = load_table(path, "text", "label", label_names=["pos", "neg"])
    assert data.label_names == ["pos", "neg"]
    assert data.labels.tolist() == [0, 1]


def test_table_unknown_label_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("text,label\nfine,pos\nhmm,neutral\n")
    with pytest.raises(InputError, match="neutral"):
        load_table(path, "text", "label", label_names=["neg", "pos"])


def test_csv_row_with_extra_fields_is_an_input_error(tmp_path: Path) -> None:
    # A row with more fields than the header (a stray comma) must not crash the loader.
    path = tmp_path / "ragged.csv"
    path.write_text("text,label\ngood film,pos\nbad, really bad film,neg\nok film,neg\n")
    try:
        data = load_table(path, "text", "label")
    except InputError:
        return
    assert "good film" in data.texts


def test_csv_with_utf8_bom_finds_first_column(tmp_path: Path) -> None:
    # Spreadsheet programs write "CSV UTF-8" with a byte-order mark before the header.
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufefftext,label\ngood,pos\nbad,neg\n".encode())
    data = load_table(path, "text", "label")
    assert data.texts == ["good", "bad"]


def test_csv_quoted_field_keeps_its_line_break(tmp_path: Path) -> None:
    # A quoted field may span lines; its line break separates words and must survive.
    path = tmp_path / "multiline.csv"
    path.write_text('text,label\n"first line\nsecond line",pos\nshort,neg\n')
    data = load_table(path, "text", "label")
    assert data.texts == ["first line\nsecond line", "short"]


# --------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_idx_round_trip(compress: bool, tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (7, 4, 3), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8) % 3
    got_images = read_idx(write_idx(tmp_path / "images", images, compress))
    got_labels = read_idx(write_idx(tmp_path / "labels", labels, compress))
    assert got_images.shape == (7, 4, 3) and got_images.dtype == np.uint8
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_idx_wider_types(tmp_path: Path) -> None:
    values = np.array([[-1, 2, 70000], [3, -4, 5]], dtype=">i4")
    path = tmp_path / "ints.idx"
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + struct.pack(">2I", 2, 3) + values.tobytes())
    np.testing.assert_array_equal(read_idx(path), values)


def test_idx_truncated_data_is_refused(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "images", np.zeros((5, 4, 4)))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(InputError, match="truncated"):
        read_idx(path)


def test_idx_truncated_header_is_refused(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "images", np.zeros((5, 4, 4)))
    path.write_bytes(path.read_bytes()[:9])  # magic, then 5 of the 12 dimension bytes
    with pytest.raises(InputError, match=re.escape(str(path))):
        read_idx(path)


def test_idx_truncated_gzip_is_refused(tmp_path: Path) -> None:
    # A half-downloaded .gz: the gzip stream ends early.
    path = write_idx(tmp_path / "images.gz", np.arange(4000).reshape(10, 20, 20) % 251, True)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=re.escape(str(path))):
        read_idx(path)


def test_idx_bad_magic_and_missing_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("these are not images")
    with pytest.raises(InputError, match="not an IDX file"):
        read_idx(text)
    with pytest.raises(InputError, match="does not exist"):
        read_idx(tmp_path / "nowhere.idx")


def test_load_idx_images_rows_as_steps(tmp_path: Path) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    pixels[0, 0, 0] = 255
    images = write_idx(tmp_path / "images", pixels)
    labels = write_idx(tmp_path / "labels", [0, 1, 2, 1, 0, 2])
    data = load_idx_images(images, labels, None)
    assert data.features.shape == (6, 5, 3)
    assert data.features.dtype == np.float32
    np.testing.assert_allclose(data.features, pixels / 255.0, rtol=1e-6)
    assert data.features[0, 0, 0] == 1.0
    assert data.labels.tolist() == [0, 1, 2, 1, 0, 2] and data.labels.dtype == np.int64
    assert data.label_names == ["0", "1", "2"]
    assert data.preprocessing["kind"] == "image-rows"
    assert (data.preprocessing["rows"], data.preprocessing["cols"]) == (5, 3)
    assert data.preprocessing["scale"] == pytest.approx(1 / 255)


def test_load_idx_images_named_labels(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "images", np.zeros((3, 2, 2)))
    labels = write_idx(tmp_path / "labels", [1, 0, 1])
    data = load_idx_images(images, labels, ["cat", "dog"])
    assert data.label_names == ["cat", "dog"]


def test_load_idx_images_count_mismatch(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "images", np.zeros((4, 2, 2)))
    labels = write_idx(tmp_path / "labels", [0, 1, 0])
    with pytest.raises(InputError, match="3 labels for 4 images"):
        load_idx_images(images, labels, None)


def test_load_idx_images_refuses_non_image_array(tmp_path: Path) -> None:
    flat = write_idx(tmp_path / "flat", np.zeros((4, 6)))
    labels = write_idx(tmp_path / "labels", [0, 1, 0, 1])
    with pytest.raises(InputError, match=r"not \[N, rows, cols\]"):
        load_idx_images(flat, labels, None)


def test_load_idx_images_label_outside_given_names(tmp_path: Path) -> None:
    # Label 5 with three class names: refused up front, not an IndexError later.
    images = write_idx(tmp_path / "images", np.zeros((3, 2, 2)))
    labels = write_idx(tmp_path / "labels", [0, 5, 1])
    with pytest.raises(InputError, match="5"):
        load_idx_images(images, labels, ["a", "b", "c"])


# --------------------------------------------------------------------------------------
# Binary addition
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 4, 8, 30])
def test_addition_examples_give_exact_sums(bits: int) -> None:
    features, sums, a, b = addition_examples(200, bits, np.random.default_rng(bits))
    assert features.shape == (200, bits + 1, 2) and features.dtype == np.float32
    assert sums.shape == (200, bits + 1) and sums.dtype == np.int64
    assert a.max() < 2**bits and b.max() < 2**bits
    np.testing.assert_array_equal(bits_to_int(features[..., 0]), a)
    np.testing.assert_array_equal(bits_to_int(features[..., 1]), b)
    np.testing.assert_array_equal(bits_to_int(sums), a + b)
    assert not features[:, bits].any()  # the extra step reads no bits: it emits the carry


def test_bits_to_int_is_lsb_first() -> None:
    assert bits_to_int(np.array([[1, 0, 1, 1], [0, 0, 0, 0], [0, 1, 0, 0]])).tolist() == [
        13,
        0,
        2,
    ]


# --------------------------------------------------------------------------------------
# The tokenizer sees training text only
# --------------------------------------------------------------------------------------


def test_text_sets_tokenizer_from_training_texts_only(tmp_path: Path) -> None:
    train_dir, test_dir = tmp_path / "train", tmp_path / "test"
    write_files(train_dir / "pos", {"a.txt": "good good film", "b.txt": "good acting"})
    write_files(train_dir / "neg", {"c.txt": "bad film", "d.txt": "bad acting"})
    write_files(test_dir / "pos", {"e.txt": "good zeppelin"})
    write_files(test_dir / "neg", {"f.txt": "bad zeppelin"})
    train, valid = text_sets(
        {"kind": "folders", "path": str(train_dir)},
        "word",
        100,
        50,
        {"kind": "folders", "path": str(test_dir)},
        0.1,
        0,
    )
    vocab = train.tokenizer["vocab"]
    assert vocab[:2] == ["<pad>", UNK]
    assert "zeppelin" not in vocab
    assert {"good", "bad", "film", "acting"} <= set(vocab)
    assert valid.labels == train.labels == ["neg", "pos"]
    # test texts: ("bad zeppelin" → neg) and ("good zeppelin" → pos), folder order neg, pos
    assert [x.tolist() for x in valid.inputs] == [
        [vocab.index("bad"), 1],
        [vocab.index("good"), 1],
    ]
    assert [int(t) for t in valid.targets] == [0, 1]
    assert len(train) == 4 and all(1 not in x for x in train.inputs)


def test_text_sets_split_keeps_validation_words_unknown(tmp_path: Path) -> None:
    # Every text has a word of its own: after the seeded split, each validation text's own
    # word must be <unk> (id 1) and no training text may contain <unk>.
    lines = ["text,label"] + [f"common word{i},{'ab'[i % 2]}" for i in range(20)]
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    source = {"kind": "table", "path": str(path), "text_column": "text", "label_column": "label"}
    train, valid = text_sets(source, "word", 1000, 50, None, 0.25, seed=3)
    assert (len(train), len(valid)) == (15, 5)
    vocab = train.tokenizer["vocab"]
    assert len(vocab) == 2 + 1 + 15  # pad, unk, "common", the 15 training words
    assert all(x.tolist() == [vocab.index("common"), 1] for x in valid.inputs)
    assert all(1 not in x for x in train.inputs)


def test_text_sets_char_tokenizer_replaces_unseen_characters(tmp_path: Path) -> None:
    train_dir, test_dir = tmp_path / "train", tmp_path / "test"
    write_files(train_dir / "x", {"a.txt": "abc"})
    write_files(train_dir / "y", {"b.txt": "cab"})
    write_files(test_dir / "x", {"c.txt": "az"})
    write_files(test_dir / "y", {"d.txt": "b"})
    train, valid = text_sets(
        {"kind": "folders", "path": str(train_dir)},
        "char",
        100,
        50,
        {"kind": "folders", "path": str(test_dir)},
        0.1,
        0,
    )
    vocab = train.tokenizer["vocab"]
    assert "z" not in vocab
    unk = vocab.index(train.tokenizer["unk_token"])
    assert valid.inputs[0].tolist() == [vocab.index("a"), unk]


def test_text_sets_truncate_to_max_len(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("text,label\none two three four five,a\nsix seven,b\nsix one,b\n")
    source = {"kind": "table", "path": str(path), "text_column": "text", "label_column": "label"}
    train, valid = text_sets(source, "word", 100, 3, None, 0.3, seed=0)
    assert max(len(x) for x in train.inputs + valid.inputs) <= 3
    assert train.preprocessing == {"kind": "text", "max_len": 3}


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------


def test_classification_metrics_three_classes() -> None:
    expected = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    metrics = classification_metrics(predicted, expected, 3)
    assert metrics["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]  # rows: truth
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert metrics["recall"] == pytest.approx([1 / 2, 1.0, 1 / 2])
    # F1 per class: 0.5, 0.8, 2/3
    assert metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert metrics["count"] == 6


def test_classification_metrics_ignore_absent_classes_in_macro_f1() -> None:
    metrics = classification_metrics(np.array([0, 1, 1]), np.array([0, 1, 1]), 4)
    assert metrics["accuracy"] == 1.0
    assert metrics["macro_f1"] == 1.0  # classes 2 and 3 never occur
    assert metrics["recall"] == [1.0, 1.0, 0.0, 0.0]
