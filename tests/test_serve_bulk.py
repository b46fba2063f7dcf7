"""Bulk classification on Ray Data: `rnnedge infer classify --ray` prints exactly the lines the
single-process `--json` command prints, for text, JSONL, CSV and Parquet inputs.

Runs only in a loopback-only network namespace (`make test-ray`), as the serving tests.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from helpers import error_line, invoke, require_loopback_ray, succeeded

pytestmark = pytest.mark.ray
require_loopback_ray("Ray Data")

PHRASES = [
    "Das ist ein kleines Haus am See",
    "The cat sat on the mat again",
    "Il pleut encore sur la ville",
    "El perro come en la cocina",
    "Questo è un libro molto bello",
    "Это очень хорошая книга",
    "To jest bardzo dobra książka",
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """500 inputs of many lengths (so chunks of 64 mix lengths differently by batch)."""
    return [
        " ".join(PHRASES[(i + k) % len(PHRASES)] for k in range(1 + i % 4))[: 10 + (i * 7) % 90]
        for i in range(500)
    ]


@pytest.fixture(scope="module")
def single_process(texts: list[str], tmp_path_factory: pytest.TempPathFactory) -> tuple:
    folder = tmp_path_factory.mktemp("bulk")
    (folder / "in.txt").write_text("\n".join(texts) + "\n")
    result = succeeded(
        invoke("infer", "classify", "fortune-langid", "--file", folder / "in.txt", "--json")
    )
    yield folder, result.stdout
    from rnnedge.serve.cluster import import_ray

    import_ray().shutdown()


def write_inputs(folder: Path, texts: list[str], suffix: str) -> Path:
    path = folder / f"in{suffix}"
    if suffix == ".jsonl":
        path.write_text(
            "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
        )
    elif suffix == ".csv":
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "id"])
            writer.writerows([t, i] for i, t in enumerate(texts))
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"text": texts, "id": list(range(len(texts)))}), path)
    return path


@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv", ".parquet"])
def test_ray_output_equals_the_single_process_command(
    suffix: str, texts: list[str], single_process: tuple
) -> None:
    folder, expected = single_process
    path = write_inputs(folder, texts, suffix)
    result = succeeded(
        invoke("infer", "classify", "fortune-langid", "--file", path, "--ray", "local")
    )
    assert result.stdout == expected


def test_small_batches_on_two_workers_give_the_same_answers(
    texts: list[str], single_process: tuple
) -> None:
    from rnnedge.serve.bulk import classify_file

    folder, expected = single_process
    lines = [
        json.dumps(answer, ensure_ascii=False) + "\n"
        for answer in classify_file("fortune-langid", folder / "in.txt", workers=2, batch_rows=37)
    ]
    assert "".join(lines) == expected


@pytest.mark.parametrize(
    ("name", "content", "needles"),
    [
        ("in.tsv", "a\tb\n", ["--ray reads", ".jsonl"]),
        ("in.jsonl", '{"body": "x"}\n', ["no 'text' column"]),
    ],
)
def test_bad_files_are_one_line(
    name: str, content: str, needles: list[str], single_process: tuple
) -> None:
    path = single_process[0] / name
    path.write_text(content)
    error_line(
        invoke("infer", "classify", "fortune-langid", "--file", path, "--ray", "local"), *needles
    )
