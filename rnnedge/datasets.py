"""Datasets users bring, read without torch (so `rnnedge eval` can use them too).

- text classification: a folder per label; the aclImdb layout (``train|test/pos|neg/*.txt``);
  CSV and JSONL with the text and label columns named by the caller;
- vector sequences: IDX files (MNIST / Fashion-MNIST), each image read as rows;
- ``add``: binary addition, LSB first, two input bits and one output bit per step.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnedge.errors import InputError
from rnnedge.textio import read_text


@dataclass
class TextExamples:
    """Texts with integer labels; `labels[i]` indexes `label_names`."""

    texts: list[str]
    labels: np.ndarray  # [N] int64
    label_names: list[str]
    skipped: list[str] = field(default_factory=list)  # why each bad row was left out


def from_named_labels(
    texts: list[str], names: list[str], skipped: list[str], label_names: list[str] | None = None
) -> TextExamples:
    """Index labels by sorted name (or by a given list, e.g. the training set's)."""
    label_names = label_names or sorted(set(names))
    index = {name: i for i, name in enumerate(label_names)}
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise InputError(f"labels {unknown[:5]} are not among the model's labels {label_names}")
    if not texts:
        raise InputError(
            "no usable examples were found"
            + (f" ({len(skipped)} rows skipped, first: {skipped[0]})" if skipped else "")
        )
    return TextExamples(
        texts, np.array([index[n] for n in names], dtype=np.int64), label_names, skipped
    )


def load_folders(root: str | Path, label_names: list[str] | None = None) -> TextExamples:
    """One sub-folder per label, one example per file (UTF-8)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(
            f"{str(root)!r} is not a folder; pass a folder with one sub-folder per label"
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name != "unsup")
    if len(folders) < 2:
        raise InputError(
            f"{str(root)!r} needs at least two label sub-folders, found {[f.name for f in folders]}"
        )
    texts, names, skipped = [], [], []
    for folder in folders:
        for file in sorted(p for p in folder.iterdir() if p.is_file()):
            try:
                texts.append(read_text(file))
                names.append(folder.name)
            except InputError as exc:
                skipped.append(str(exc))
    return from_named_labels(texts, names, skipped, label_names)


def load_aclimdb(
    root: str | Path, split: str, label_names: list[str] | None = None
) -> TextExamples:
    """The aclImdb layout: ``root/{train,test}/{pos,neg}/*.txt`` (``unsup`` ignored)."""
    folder = Path(root) / split
    if not (folder / "pos").is_dir() or not (folder / "neg").is_dir():
        raise InputError(
            f"{str(folder)!r} has no pos/ and neg/ folders: is {str(root)!r} an aclImdb folder?"
        )
    return load_folders(folder, label_names)


def load_table(
    path: str | Path, text_column: str, label_column: str, label_names: list[str] | None = None
) -> TextExamples:
    """CSV (header row) or JSONL (one object per line); rows without text or label are skipped."""
    path = Path(path)
    content = read_text(path, "data file")
    rows = (
        read_jsonl(content) if path.suffix in (".jsonl", ".json", ".ndjson") else read_csv(content)
    )
    if not rows:
        raise InputError(f"{str(path)!r} has no data rows")
    columns = sorted(
        {
            key
            for row in rows
            if isinstance(row, dict)
            for key in row
            if isinstance(key, str) and key != BAD_ROW
        }
    )
    for wanted, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
        if wanted not in columns:
            raise InputError(
                f"column {wanted!r} ({flag}) is not in {str(path)!r}; its columns are {columns}"
            )
    texts, names, skipped = [], [], []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or BAD_ROW in row:
            skipped.append(
                row.get(BAD_ROW) if isinstance(row, dict) else f"row {number}: not an object"
            )
            continue
        text, label = row.get(text_column), row.get(label_column)
        if not isinstance(text, str) or not text.strip() or label in (None, ""):
            skipped.append(f"row {number}: missing text or label")
            continue
        texts.append(text)
        names.append(str(label))
    return from_named_labels(texts, names, skipped, label_names)


def read_csv(content: str) -> list[dict]:
    """Rows as dicts; a row with more fields than the header is kept aside as bad."""
    rows = []
    # newline="" keeps line breaks inside quoted fields; a BOM (Excel's "CSV UTF-8") is not
    # part of the first column's name.
    for number, row in enumerate(
        csv.DictReader(io.StringIO(content.removeprefix("\ufeff"), newline="")), start=1
    ):
        rows.append({BAD_ROW: f"row {number}: more fields than the header"} if None in row else row)
    return rows


def read_jsonl(content: str) -> list:
    rows = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            rows.append({BAD_ROW: f"line {number} is not JSON"})
    return rows


BAD_ROW = "__bad_row__"  # marks a row that could not be parsed, with the reason
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (optionally gzipped): magic 0 0 type ndim, big-endian dims, data."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"IDX file {str(path)!r} does not exist; check the path")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            raise InputError(
                f"{str(path)!r} is a truncated or corrupt .gz file; download or copy it again"
            ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise InputError(f"{str(path)!r} is not an IDX file (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise InputError(f"{str(path)!r} is truncated: its IDX header is incomplete")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    data = raw[4 + 4 * ndim :]
    if len(data) != expected:
        raise InputError(
            f"{str(path)!r} is truncated or corrupt: {len(data)} data bytes for "
            f"shape {dims}, expected {expected}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(dims)


@dataclass
class VectorSequences:
    """Sequences of feature vectors with labels: features [N, T, D] float32, labels [N]."""

    features: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    preprocessing: dict


def load_idx_images(
    images: str | Path,
    labels: str | Path,
    label_names: list[str] | None,
    scale: float = 1.0 / 255.0,
) -> VectorSequences:
    """Each image is a sequence of its rows (T = height steps of D = width features)."""
    pixels, targets = read_idx(images), read_idx(labels)
    if pixels.ndim != 3:
        raise InputError(f"{str(images)!r} holds shape {pixels.shape}, not [N, rows, cols] images")
    if targets.shape != (pixels.shape[0],):
        raise InputError(
            f"{str(labels)!r} has {targets.shape[0]} labels for {pixels.shape[0]} images"
        )
    names = label_names or [str(i) for i in range(int(targets.max()) + 1)]
    if targets.size and (int(targets.min()) < 0 or int(targets.max()) >= len(names)):
        raise InputError(
            f"{str(labels)!r} has labels {int(targets.min())}..{int(targets.max())} "
            f"but there are {len(names)} class names; check --label-names or the "
            "labels file"
        )
    features = pixels.astype(np.float32) * np.float32(scale)  # [N, rows, cols]
    preprocessing = {
        "kind": "image-rows",
        "rows": int(pixels.shape[1]),
        "cols": int(pixels.shape[2]),
        "scale": scale,
        "description": "each image row is one step; pixel * scale",
    }
    return VectorSequences(features, targets.astype(np.int64), names, preprocessing)


def addition_examples(
    count: int, bits: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Binary addition, LSB first: (features [N, bits+1, 2] float32, sums [N, bits+1] int64, a, b).

    Step t reads bit t of a and b (0 past their length) and must output bit t of a + b;
    the extra last step emits the final carry.
    """
    high = 2**bits
    a = rng.integers(0, high, count)
    b = rng.integers(0, high, count)
    steps = np.arange(bits + 1)
    features = np.stack([(a[:, None] >> steps) & 1, (b[:, None] >> steps) & 1], axis=-1)
    sums = ((a + b)[:, None] >> steps) & 1
    return features.astype(np.float32), sums.astype(np.int64), a, b


def bits_to_int(bits: np.ndarray) -> np.ndarray:
    """LSB-first bit rows [N, T] → integers [N]."""
    return (bits.astype(np.int64) << np.arange(bits.shape[-1])).sum(-1)
