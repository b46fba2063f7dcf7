"""The KJV language model against classical compressors, on the same held-out characters.

    python export/compress_compare.py [MODEL] [--text data/kjv.txt] [--json OUT]
                                      [--only gzip,bz2] [--card export/kjv-char-lstm.toml]

The text is cut as training cuts it (rnnedge.textio.tail_start: the last 10 % of the
characters is held out). Each compressor is given the training text as context, and is
charged only for what the held-out tail adds:

    bits/char = 8 × (size(compress(train + heldout)) − size(compress(train))) / heldout chars

so its header and what it learnt from the training text cost nothing, as the model's
training costs it nothing. The model's figure is the runtime's own `rnnedge eval MODEL --text
TEXT --tail 0.1 --warmup 1000`: like a compressor, it predicts each held-out character after
the text before it (each of its 32 slices is read after the 1,000 characters before it).
The model is also read adaptively (`--adapt RATE --streams 1`: its output layer learns from
the held-out text as it scores it, in order, as a compressor adapts); RATE is chosen among
ADAPT_RATES on the last ADAPT_TUNING_CHARS characters of the training text, never on the
held-out tail.
Needs gzip, xz, bzip2 (Debian base), 7z (p7zip-full) and zpaq (zpaq).
Writes MODEL.compare.json (the model's sha256 inside, so a card never shows figures of
another file) and, with --card RECIPE, rewrites the model card with the table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnedge.atomic import write_text_atomic
from rnnedge.textio import read_text, tail_start

ROOT = Path(__file__).resolve().parent.parent
HELDOUT_FRACTION = 0.1
WARMUP_CHARS = 1000  # read before each scored slice (measured: 1.6438 -> 1.6429 for v1.0.0)
ADAPT_RATES = (0.001, 0.002, 0.003, 0.005, 0.01)  # candidate SGD rates for --adapt
ADAPT_TUNING_CHARS = 60_000  # the end of the training text the rate is chosen on


def piped(command: list[str]) -> Callable[[bytes], int]:
    """A compressor that reads stdin and writes the compressed stream to stdout."""

    def size(data: bytes) -> int:
        return len(subprocess.run(command, input=data, capture_output=True, check=True).stdout)

    return size


def archived(
    before: list[str], archive: str, after: tuple[str, ...] = ()
) -> Callable[[bytes], int]:
    """A compressor that archives a file (`before` archive text `after`, in a scratch folder);
    the archive's size. The file has the same name every time, so the archive's directory
    entry is the same for both texts and cancels out of the difference."""

    def size(data: bytes) -> int:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            (folder / "text").write_bytes(data)
            command = [*before, archive, "text", *after]
            subprocess.run(command, cwd=folder, capture_output=True, check=True)
            return (folder / archive).stat().st_size

    return size


# name: (command shown in the table, size function)
COMPRESSORS: dict[str, tuple[str, Callable[[bytes], int]]] = {
    "gzip": ("gzip -9", piped(["gzip", "-9", "-c", "-n"])),
    "xz": ("xz -9e", piped(["xz", "-9e", "-c"])),
    "bz2": ("bzip2 -9", piped(["bzip2", "-9", "-c"])),
    "PPMd": (
        "7z -m0=PPMd:o=8:mem=1g",
        archived(["7z", "a", "-bd", "-m0=PPMd:o=8:mem=1g"], "archive.7z"),
    ),
    "zpaq": ("zpaq -m5", archived(["zpaq", "a"], "archive.zpaq", ("-m5",))),  # options last
}


def compressor_size(name: str, data: bytes) -> int:
    """Compressed size of `data` by the named compressor."""
    return COMPRESSORS[name][1](data)


def split(text: str, fraction: float = HELDOUT_FRACTION) -> tuple[str, str]:
    """(training text, held-out tail), cut where training and `rnnedge eval --tail` cut."""
    start = tail_start(len(text), fraction)
    return text[:start], text[start:]


def conditional_bits_per_char(name: str, train: str, heldout: str) -> dict[str, Any]:
    """What the held-out text costs the compressor once it has seen the training text."""
    began = time.perf_counter()
    context = compressor_size(name, train.encode("utf-8"))
    whole = compressor_size(name, (train + heldout).encode("utf-8"))
    return {
        "command": COMPRESSORS[name][0],
        "train_bytes": context,
        "train_and_heldout_bytes": whole,
        "bits_per_char": 8 * (whole - context) / len(heldout),
        "seconds": time.perf_counter() - began,
    }


def model_bits_per_char(model: Path, text: Path, adapt: float = 0.0) -> dict[str, Any]:
    """The runtime's held-out bits/char: `rnnedge eval MODEL --text TEXT --tail 0.1 --warmup
    1000 --json` (plus `--adapt RATE --streams 1` when `adapt`)."""
    command = ["eval", shown(model), "--text", shown(text), "--tail", str(HELDOUT_FRACTION)]
    command += ["--warmup", str(WARMUP_CHARS)]
    command += ["--adapt", str(adapt), "--streams", "1"] if adapt else []
    began = time.perf_counter()
    run = [sys.executable, "-m", "rnnedge", *command, "--json"]
    report = json.loads(
        subprocess.run(run, capture_output=True, check=True, text=True, cwd=ROOT).stdout
    )
    # The runtime reads the tail as 32 slices, each after the text before it, and scores
    # "chars" characters: all but the "unscored_chars" (< 32) that do not fill a slice.
    return {
        "command": " ".join(["rnnedge", *command]),
        "bits_per_char": report["bpc"],
        "chars": report["chars"],
        "skipped_chars": report["skipped_chars"],
        "unscored_chars": report["unscored_chars"],
        "seconds": time.perf_counter() - began,
    }


def tuned_adapt_rate(model: Path, train: str) -> dict[str, Any]:
    """Bits/char of the training text's last ADAPT_TUNING_CHARS characters, read in order
    with each candidate rate; the best rate. The held-out tail plays no part in the choice."""
    from rnnedge.runtime import load

    generator = load(model, threads=1)
    context, tuning = train[:-ADAPT_TUNING_CHARS], train[-ADAPT_TUNING_CHARS:]
    scores = {
        str(rate): generator.evaluate(
            tuning, streams=1, context=context, warmup=WARMUP_CHARS, adapt=rate
        )["bpc"]
        for rate in ADAPT_RATES
    }
    best = min(scores, key=scores.__getitem__)
    return {"chars": ADAPT_TUNING_CHARS, "bits_per_char_by_rate": scores, "rate": float(best)}


def shown(path: Path) -> str:
    """A path as a user of the repository types it (relative to its root when inside it)."""
    absolute = Path(os.path.abspath(path))  # data/ may be a symlink: do not resolve it
    return str(absolute.relative_to(ROOT)) if absolute.is_relative_to(ROOT) else str(path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compare(text_path: Path, model: Path | None, names: list[str]) -> dict[str, Any]:
    """Every named compressor's conditional bits/char and the model's, on one cut."""
    missing = [n for n in names if shutil.which(COMPRESSORS[n][0].split()[0]) is None]
    if missing:
        raise SystemExit(
            f"error: {', '.join(missing)} not installed; apt-get install p7zip-full zpaq"
        )
    text = read_text(text_path)
    train, heldout = split(text)
    results: dict[str, Any] = {
        "text": shown(text_path),
        "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "chars": len(text),
        "heldout_chars": len(heldout),
        "heldout_fraction": HELDOUT_FRACTION,
        "compressors": {n: conditional_bits_per_char(n, train, heldout) for n in names},
    }
    if model is not None:
        results["model"] = {"file": model.name, "sha256": sha256(model)}
        results["model"].update(model_bits_per_char(model, text_path))
        tuning = tuned_adapt_rate(model, train)
        adaptive = model_bits_per_char(model, text_path, adapt=tuning["rate"])
        results["model_adaptive"] = {**adaptive, "rate_tuning": tuning}
    return results


def markdown(results: dict[str, Any]) -> list[str]:
    """The comparison as a Markdown table, best first."""
    every = results["heldout_chars"]
    rows = [(v["command"], v["bits_per_char"], every) for v in results["compressors"].values()]
    if "model" in results:
        model = results["model"]
        rows.append((f"this model (`{model['command']}`)", model["bits_per_char"], model["chars"]))
    if "model_adaptive" in results:
        model = results["model_adaptive"]
        shown_as = f"this model, adaptive reading (`{model['command']}`)"
        rows.append((shown_as, model["bits_per_char"], model["chars"]))
    lines = ["| system | held-out bits/char | characters scored |", "|---|---|---|"]
    lines += [
        f"| {n} | {bpc:.3f} | {chars:,} |" for n, bpc, chars in sorted(rows, key=lambda r: r[1])
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=ROOT / "models/kjv-char-lstm.onnx")
    parser.add_argument("--text", type=Path, default=ROOT / "data/kjv.txt")
    parser.add_argument("--json", type=Path, help="default: MODEL.compare.json")
    parser.add_argument(
        "--only", default=",".join(COMPRESSORS), help="compressors, comma-separated"
    )
    parser.add_argument("--card", type=Path, help="recipe whose model card to rewrite")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in COMPRESSORS]
    if unknown:
        raise SystemExit(
            f"error: unknown compressor {unknown[0]!r}; choose from {', '.join(COMPRESSORS)}"
        )
    results = compare(args.text, args.model, names)
    out = args.json or args.model.with_suffix(".compare.json")
    write_text_atomic(out, json.dumps(results, indent=2) + "\n")
    print("\n".join(markdown(results)))
    if args.card:
        rewrite_card(args.card, args.model)


def rewrite_card(recipe_path: Path, model: Path) -> None:
    """The model card again, through the build's own writer (which reads MODEL.compare.json)."""
    import tomllib

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from build import write_card

    write_card(tomllib.loads(recipe_path.read_text()), model, model.stat().st_size)


if __name__ == "__main__":
    main()
