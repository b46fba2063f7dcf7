"""Reproduce the five tutorials in small runs and write docs/reproductions.md with its figures.

    python export/reproduce.py [--only addition,gradients,charrnn,fashion] [--page-only]

Each item trains small models with the rnnedge CLI (as a user would), exports them, measures
them with the onnxruntime runtime and stores what it measured in
runs/reproductions/<item>.json; the page and its plots (docs/repro-*.png) are then written
from those files by export/reproduce_page.py. The long trainings (the Shakespeare 3 × 512
LSTM, the Chinese poetry model) are recipes of their own; the page reports where they stand.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "runs" / "reproductions"
FASHION = Path("/usr/share/datasets/fashion-mnist")
FORTUNES = Path("/usr/share/games/fortunes")
LABELS = "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"


def rnnedge(*args: str | Path) -> str:
    """Run the rnnedge CLI as a user would (niced: the machine is shared); its stdout."""
    command = ["nice", "-n", "10", sys.executable, "-m", "rnnedge", *map(str, args)]
    return subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout


def train_export(run: Path, args: list[str]) -> tuple[Path, float]:
    """`rnnedge train …` into a fresh `run`, export best.pt beside it; (model, seconds)."""
    shutil.rmtree(run, ignore_errors=True)
    start = time.perf_counter()
    rnnedge("train", *args, "--out", run, "--threads", "1")
    seconds = time.perf_counter() - start
    model = run.with_suffix(".onnx")
    rnnedge("export", run / "best.pt", "-o", model)
    return model, seconds


def metrics(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def addition() -> dict[str, Any]:
    """The numpy-RNN tutorial: 8-bit binary addition, streamed bit by bit; then far longer."""
    from addition import exact_rate, stream_sum_bits

    from rnnedge.runtime import load_classifier

    args = ["add", "--bits", "8", "--hidden", "16", "--steps", "400", "--seed", "0"]
    model, seconds = train_export(WORK / "add", args)
    classifier = load_classifier(model, device="cpu", threads=1)
    scored = json.loads(rnnedge("eval", model, "--add", "1000", "--json"))
    a, b = 0xDEADBEEFCAFEF00D, 0x0123456789ABCDEF
    return {
        "command": "rnnedge train " + " ".join(args),
        "train_seconds": seconds,
        "exact_8bit": scored["exact"],
        "demo": {"a": 23, "b": 19, "steps": list(stream_sum_bits(classifier, 23, 19))},
        "long_demo": {"a": a, "b": b, "steps": list(stream_sum_bits(classifier, a, b))},
        "exact_by_bits": {str(n): exact_rate(classifier, n, 200, n) for n in (8, 32, 64, 256)},
    }


def gradients() -> dict[str, Any]:
    """The BPTT tutorial: numeric gradient check; gradient norm through time."""
    import torch
    from gradients import gradient_check, gradient_through_time

    torch.set_num_threads(1)
    start = time.perf_counter()
    checks = {cell: gradient_check(cell) for cell in ("rnn", "gru", "lstm")}
    through_time = gradient_through_time(steps=40, hidden=32, train_steps=400)
    return {"check": checks, "through_time": through_time, "seconds": time.perf_counter() - start}


def chinese_poems_text() -> Path:
    """The Tang and Song poems of fortunes-zh as one text (the tutorial used song lyrics)."""
    from poems import read_items

    items = [item for name in ("tang300", "song100") for item in read_items(FORTUNES / name)]
    path = WORK / "tang-song.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(items) + "\n", encoding="utf-8")
    return path


CHAR_RUNS = {
    "rnn, random windows": ["--cell", "rnn", "--batching", "random"],
    "rnn, consecutive": ["--cell", "rnn", "--batching", "sequential"],
    "gru, random windows": ["--cell", "gru", "--batching", "random"],
    "lstm, random windows": ["--cell", "lstm", "--batching", "random"],
}


def charrnn() -> dict[str, Any]:
    """The from-scratch char RNN tutorial: one-hot, 256 hidden, 35 steps, clipping."""
    from rnnedge.runtime import load
    from rnnedge.runtime.sampling import SamplingConfig

    text = chinese_poems_text()
    shown = text.relative_to(ROOT)  # the CLI runs in the repository root
    common = ["--text", str(shown), "--embed-dim", "0", "--hidden", "256", "--layers", "1"]
    common += ["--seq-len", "35", "--batch-size", "32", "--clip", "1.0", "--lr", "0.005"]
    common += ["--steps", "1500", "--eval-every", "100", "--seed", "0"]
    out: dict[str, Any] = {"command": "rnnedge train lm " + " ".join(common), "runs": {}}
    for name, extra in CHAR_RUNS.items():
        run = WORK / ("char-" + name.replace(", ", "-").replace(" ", "-"))
        model, seconds = train_export(run, ["lm", *common, *extra])
        lm = load(model, device="cpu", threads=1)
        greedy = {
            prompt: prompt + "".join(lm.generate(prompt, 30, SamplingConfig(temperature=0.0)))
            for prompt in ("分开", "不分开")
        }
        out["runs"][name] = {"metrics": metrics(run), "seconds": seconds, "greedy": greedy}
    return out


def fashion() -> dict[str, Any]:
    """The MNIST-row-by-row tutorial on Fashion-MNIST: LSTM(128), 1 and 2 layers."""
    data = ["--images", FASHION / "train-images-idx3-ubyte.gz"]
    data += ["--labels", FASHION / "train-labels-idx1-ubyte.gz", "--valid-fraction", "0.1"]
    test = ["--images", FASHION / "t10k-images-idx3-ubyte.gz"]
    test += ["--labels", FASHION / "t10k-labels-idx1-ubyte.gz"]
    out: dict[str, Any] = {"runs": {}}
    for layers, dropout in ((1, "0.0"), (2, "0.2")):
        args = ["--cell", "lstm", "--hidden", "128", "--layers", str(layers)]
        args += ["--dropout", dropout, "--steps", "300", "--batch-size", "128", "--lr", "0.003"]
        args += ["--eval-every", "100", "--seed", "0", "--label-names", LABELS]
        model, seconds = train_export(WORK / f"fashion-{layers}", ["sequence", *data, *args])
        scored = json.loads(rnnedge("eval", model, *test, "--json"))
        out["runs"][str(layers)] = {
            "command": "rnnedge train sequence " + " ".join(map(str, args)),
            "seconds": seconds,
            "test_accuracy": scored["accuracy"],
            "test_examples": scored["examples"],
        }
    return out


ITEMS = {"addition": addition, "gradients": gradients, "charrnn": charrnn, "fashion": fashion}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(ITEMS), help="comma-separated items")
    parser.add_argument("--page-only", action="store_true", help="only rewrite the page")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    for name in [] if args.page_only else args.only.split(","):
        print(f"reproducing {name} …", file=sys.stderr)
        result = ITEMS[name]()
        (WORK / f"{name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    from reproduce_page import write_page

    print(f"wrote {write_page(WORK)}", file=sys.stderr)


if __name__ == "__main__":
    main()
