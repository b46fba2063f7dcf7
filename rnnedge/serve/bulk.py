"""Bulk classification on Ray Data: a file too big for one process, classified across a cluster.

Reads JSONL, CSV or Parquet (the ``text`` column) or plain text (one input per non-blank
line), runs one onnxruntime session per actor over batches of ``batch_size`` rows, and
yields each input's prediction in input order, as `rnnedge infer classify --json` does in
one process. Within a batch the classifier sorts by length and runs chunks of 64, exactly as
the single-process command does, so fp32 answers are the same; int8 files scale
activations per chunk, so their probabilities can move in the last digits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rnnedge.errors import InputError
from rnnedge.serve.cluster import init_ray, portable_ref

TEXT_COLUMN = "text"
# Rows per Ray task: measured on the shipped language-ID model (docs/serving.md); smaller
# batches pay Ray's per-task overhead, larger ones only delay the first answers.
DEFAULT_BATCH_ROWS = 4096
READERS = {".jsonl": "read_json", ".json": "read_json", ".csv": "read_csv"}
READERS |= {".parquet": "read_parquet", ".txt": "read_text"}


class ClassifyBatch:
    """A Ray Data actor: one classifier session, reused for every batch it is given."""

    def __init__(self, model: str, top: int) -> None:
        from rnnedge.runtime import load_classifier

        self.classifier = load_classifier(model, device="cpu", threads=1)
        self.top = top

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import json

        texts = [str(t) for t in batch[TEXT_COLUMN]]
        predictions = self.classifier.classify(texts, top=self.top)
        answers = [json.dumps(p.to_dict(), ensure_ascii=False) for p in predictions]
        return {TEXT_COLUMN: texts, "prediction": answers}


def read_dataset(ray: Any, path: Path) -> Any:
    """The file as a Ray dataset with a ``text`` column (blank text lines dropped)."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(
            f"--ray reads .jsonl, .csv, .parquet or .txt files, not {path.name!r}; convert it"
        )
    if not path.is_file():
        raise InputError(f"--file {str(path)!r} does not exist")
    dataset = getattr(ray.data, reader)(str(path.resolve()))
    if reader == "read_text":
        return dataset.filter(lambda row: bool(row[TEXT_COLUMN].strip()))
    if TEXT_COLUMN not in dataset.columns():
        raise InputError(f"{path.name} has no {TEXT_COLUMN!r} column; name the inputs' column text")
    return dataset.select_columns([TEXT_COLUMN])


def classify_file(
    model: str,
    path: str | Path,
    address: str | None = None,
    workers: int | None = None,
    top: int = 1,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Iterator[dict[str, Any]]:
    """Each input of `path` with its prediction ({"input", "label", "probability", "top"}),
    in file order, classified by `workers` Ray actors (default: one per CPU of the cluster at
    `address`, or of a local one when None, less one CPU for reading)."""
    import json

    if (workers is not None and workers < 1) or batch_rows < 1 or top < 1:
        raise InputError("workers, batch rows and --top must be at least 1")
    ray = init_ray(address)
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)) - 1)
    # Ray Data logs each dataset's plan and operator metrics to the console: stdout is for
    # answers and stderr for problems, so keep only its warnings.
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # answers in input order
    context.enable_progress_bars = False
    dataset = read_dataset(ray, Path(path)).map_batches(
        ClassifyBatch,
        fn_constructor_args=(portable_ref(model), top),
        batch_size=batch_rows,
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
        batch_format="numpy",
    )
    for row in dataset.iter_rows():
        yield {"input": row[TEXT_COLUMN], **json.loads(row["prediction"])}


def classify_to_stdout(model: str, file: Path | None, ray: str, top: int) -> None:
    """`rnnedge infer classify MODEL --file F --ray local|HOST:PORT`: JSON lines on stdout,
    the same as the single-process command's `--json`."""
    import json
    import sys

    if file is None or str(file) == "-":
        raise InputError("--ray classifies a file: give --file big.jsonl (or .csv, .parquet, .txt)")
    address = None if ray == "local" else ray
    for answer in classify_file(model, file, address, top=top):
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
    sys.stdout.flush()
