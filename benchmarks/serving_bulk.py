"""Bulk classification benchmark: Ray Data with 1 and 2 local workers, rows per Ray batch,
against the single-process classifier on the same inputs.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python benchmarks/serving_bulk.py'

Inputs: the first ROWS lines of the language-ID training table (data/langid/train.jsonl,
`text` column), or any JSONL given with --file. Times include Ray Data's reading and
ordering, not Ray's start. Writes benchmarks/SERVING-bulk.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def inputs(source: Path, rows: int, out: Path) -> list[str]:
    """The first `rows` texts of `source`, also written to `out` as JSONL."""
    texts = []
    with source.open() as handle:
        for line in handle:
            text = json.loads(line)["text"]
            if text.strip():
                texts.append(text)
            if len(texts) == rows:
                break
    out.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts))
    return texts


def single_process(model: str, texts: list[str]) -> float:
    from rnnedge.runtime import load_classifier

    classifier = load_classifier(model, threads=1)
    began = time.perf_counter()
    classifier.classify(texts)
    return len(texts) / (time.perf_counter() - began)


def on_ray(model: str, path: Path, workers: int, batch_rows: int) -> float:
    from rnnedge.serve.bulk import classify_file

    began = time.perf_counter()
    count = sum(1 for _ in classify_file(model, path, workers=workers, batch_rows=batch_rows))
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fortune-langid")
    parser.add_argument("--file", type=Path, default=ROOT / "data" / "langid" / "train.jsonl")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-rows", type=int, nargs="+", default=[512, 4096, 16384])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "SERVING-bulk.md")
    args = parser.parse_args()
    data = Path("/tmp") / f"rnnedge-bulk-{os.getpid()}.jsonl"
    texts = inputs(args.file, args.rows, data)
    rows = [("single process (`rnnedge infer classify`)", "-", single_process(args.model, texts))]
    print(rows[-1], flush=True)
    from rnnedge.serve.cluster import init_ray

    init_ray()
    on_ray(args.model, data, 1, 4096)  # warm-up: actors' workers, imports
    for batch_rows in args.batch_rows:
        rows.append(("Ray Data, 1 worker", batch_rows, on_ray(args.model, data, 1, batch_rows)))
        print(rows[-1], flush=True)
    for workers in (1, 2):
        how = f"Ray Data, {workers} worker{'s' if workers > 1 else ''}"
        rows.append((how, 4096, on_ray(args.model, data, workers, 4096)))
        print(rows[-1], flush=True)
    data.unlink()
    lines = [
        "# Bulk classification benchmark (Ray Data)",
        "",
        f"Model `{args.model}`, the first {len(texts):,} texts of `{args.file.name}`, one "
        f"onnxruntime thread per worker, local Ray on {os.cpu_count()} cores shared with "
        f"other work (load average {os.getloadavg()[1]:.1f} over the last 5 minutes). "
        "Command: `python benchmarks/serving_bulk.py`.",
        "",
        "| how | rows per Ray batch | inputs/s |",
        "|---|---:|---:|",
        *[f"| {how} | {batch} | {rate:,.0f} |" for how, batch, rate in rows],
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
