"""Language-identification data from Debian packages: fortunes, gettext catalogues and
translated manual pages to train on, the Debian reference manual as an out-of-domain test
(export/langid_sources.py).

Each item (a fortune, a message, a paragraph) belongs to exactly one of train / valid / test,
so no test snippet shares text with training. Every row names its source. Training examples are
random crops of 12–100 characters (half from the item's start) plus each training item's own first
20 and 60 characters; small collections get more crops per item so every language of every
source contributes about CROPS_PER_LANGUAGE examples. Validation and test snippets are each
held-out item's first 20 and first 60 characters (items at least that long), the task the
model is judged on. The manual's paragraphs are never trained on: ood20.jsonl / ood60.jsonl
hold their first 20 / 60 characters, up to MAX_OOD per language.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
from pathlib import Path

FORTUNE_DIR = "/usr/share/games/fortunes"
PACKAGES = {  # language code: Debian packages
    "en": ["fortunes-min", "fortunes"],
    "de": ["fortunes-de"],
    "es": ["fortunes-es"],
    "it": ["fortunes-it"],
    "ru": ["fortunes-ru"],
    "pl": ["fortunes-pl"],
    "cs": ["fortunes-cs"],
    "bg": ["fortunes-bg"],
    "pt": ["fortunes-br"],
    "zh": ["fortunes-zh"],
    "eo": ["fortunes-eo"],
    "ga": ["fortunes-ga"],
}
MAX_TRAIN, MAX_HELD_OUT, MIN_CHARS, SNIPPETS, MAX_OOD = 12000, 500, 20, (20, 60), 800
CROPS_PER_LANGUAGE, MAX_CROPS_PER_FORTUNE = 24000, 40
WHITESPACE = re.compile(r"\s+")
TERMINAL_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colours in the Chinese collections


def package_files(package: str) -> list[Path]:
    """The package's fortune text files (symlinks resolved, .u8 preferred, no .dat)."""
    listed = subprocess.run(
        ["dpkg", "-L", package], check=True, capture_output=True, text=True
    ).stdout.split()
    files = {Path(f).resolve() for f in listed if f.startswith(FORTUNE_DIR)}
    files = {
        f
        for f in files
        if f.is_file() and f.stat().st_size and f.suffix != ".dat" and "ascii" not in f.name
    }
    # Some packages ship a UTF-8 twin (X.u8) of a legacy-encoded file; some twins are empty.
    return sorted(f for f in files if f.suffix == ".u8" or f.with_suffix(".u8") not in files)


def fortunes_of(language: str) -> list[str]:
    """Distinct fortunes of one language, whitespace collapsed, at least MIN_CHARS long."""
    seen: dict[str, None] = {}
    for package in PACKAGES[language]:
        for path in package_files(package):
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # a legacy-encoded file without a .u8 twin
            for fortune in re.split(r"^%\s*$", text, flags=re.MULTILINE):
                clean = WHITESPACE.sub(" ", TERMINAL_ESCAPES.sub("", fortune)).strip()
                if len(clean) >= MIN_CHARS:
                    seen.setdefault(clean)
    return list(seen)


def crops_per_fortune(fortunes: int) -> int:
    """Crops per training fortune: at least 3, more for small collections (class balance)."""
    return max(3, min(MAX_CROPS_PER_FORTUNE, -(-CROPS_PER_LANGUAGE // max(1, fortunes))))


def crops(text: str, rng: random.Random, count: int) -> list[str]:
    """The fortune's first 20 and 60 characters (how snippets are judged), then random crops
    of 12-100 characters, half of them from the start."""
    out = [text[:n] for n in SNIPPETS]
    for _ in range(count - len(out)):
        length = rng.randint(12, 100)
        from_start = rng.random() < 0.5 or len(text) <= length
        start = 0 if from_start else rng.randint(0, len(text) - length)
        out.append(text[start : start + length])
    return out


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def snippets(items: list[str], language: str, source: str, length: int) -> list[dict]:
    """The first `length` characters of each item at least that long (the judged task)."""
    return [
        {"text": t[:length], "lang": language, "source": source} for t in items if len(t) >= length
    ]


def split_source(
    source: str, language: str, items: list[str], seed: int, rng: random.Random
) -> tuple[list[dict], list[dict], dict[int, list[dict]]]:
    """Train crops, validation snippets and test snippets of one language of one source.

    Split by item (a fortune, a message) with its own seeded generator, so changing how crops
    are drawn never moves an item between train / valid / test.
    """
    random.Random(f"{seed}:{language}" + ("" if source == "fortunes" else f":{source}")).shuffle(
        items
    )
    held = min(MAX_HELD_OUT, len(items) // 10)
    test_part, valid_part, train_part = items[:held], items[held : 2 * held], items[2 * held :]
    train_part = train_part[:MAX_TRAIN]
    count = crops_per_fortune(len(train_part))
    train = [
        {"text": c, "lang": language, "source": source}
        for item in train_part
        for c in crops(item, rng, count)
    ]
    valid = [row for n in SNIPPETS for row in snippets(valid_part, language, source, n)]
    tests = {n: snippets(test_part, language, source, n) for n in SNIPPETS}
    return train, valid, tests


def prepare_langid(folder: Path, seed: int = 0, sources: tuple[str, ...] = ("fortunes",)) -> dict:
    """train.jsonl, valid.jsonl, test20.jsonl, test60.jsonl in `folder` from the training
    sources; with "gettext" among them, also ood20.jsonl / ood60.jsonl from the Debian reference
    manual, never trained on. Returns the item counts per source and language."""
    from langid_sources import REFERENCE_LANGUAGES, gettext_messages, manpage_paragraphs

    readers = {"fortunes": fortunes_of, "gettext": gettext_messages, "manpages": manpage_paragraphs}
    rng = random.Random(seed)
    train, valid, tests = [], [], {n: [] for n in SNIPPETS}
    counts: dict[str, dict[str, int]] = {}
    for source in sources:
        counts[source] = {}
        for language in PACKAGES:
            items = readers[source](language)
            counts[source][language] = len(items)
            part_train, part_valid, part_tests = split_source(source, language, items, seed, rng)
            train += part_train
            valid += part_valid
            for n in SNIPPETS:
                tests[n] += part_tests[n]
    rng.shuffle(train)
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "valid.jsonl", valid)
    for n, rows in tests.items():
        write_jsonl(folder / f"test{n}.jsonl", rows)
    if "gettext" in sources:
        counts["debian-reference"] = write_out_of_domain(folder, REFERENCE_LANGUAGES, seed)
    return counts


def write_out_of_domain(folder: Path, languages: dict, seed: int) -> dict[str, int]:
    """ood20.jsonl / ood60.jsonl: up to MAX_OOD paragraphs per language of the manual."""
    from langid_sources import reference_paragraphs

    counts, tests = {}, {n: [] for n in SNIPPETS}
    for language in languages:
        items = reference_paragraphs(language)
        random.Random(f"{seed}:{language}:ood").shuffle(items)
        counts[language] = len(items)
        for n in SNIPPETS:
            tests[n] += snippets(items, language, "debian-reference", n)[:MAX_OOD]
    for n, rows in tests.items():
        write_jsonl(folder / f"ood{n}.jsonl", rows)
    return counts


if __name__ == "__main__":
    print(prepare_langid(Path("data/langid"), sources=("fortunes", "gettext")))
