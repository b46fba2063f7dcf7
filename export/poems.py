"""The Chinese poetry model's recipe steps: prepare the text, train, compare, export, card.

    python export/build.py export/zh-poems-lstm.toml [--stage prepare|train|export|all]

Data: Debian ``fortunes-zh`` (the 300 Tang poems, 100 Song poems and the general Chinese
collection). Each fortune is one item; items are cleaned (colour escapes removed), exact
duplicates dropped and split BY ITEM: about 1 in 20 (by a hash of its text) is held out,
and a held-out item sharing any line with a training item moves to training, so no poem is
scored on lines the model has read. The prepared file holds the training items (in a seeded
shuffle) and then the held-out items, so the trainer's held-out tail (``valid_fraction``) is
exactly the held-out items: the build checks that the recipe's fraction cuts there.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ESCAPES = re.compile(r"\x1b\[[0-9;]*m")
CJK = re.compile(r"[\u4e00-\u9fff]")
TITLE_PREFIX = re.compile(r"^题目[:：]")
CLAUSE_BREAK = re.compile(r"[，。？！；：、\n]")
CJK_ONLY = re.compile(r"[\u4e00-\u9fff]+")
SEPARATOR = "\n\n"  # between items in the prepared text
GOLDEN_PROMPT = "床前"


def read_items(path: Path) -> list[str]:
    """The fortunes of one strfile source (items separated by lines holding '%')."""
    text = ESCAPES.sub("", path.read_text(encoding="utf-8"))
    items = re.split(r"\n%\n?", text)
    return [clean(item) for item in items if item.strip()]


def clean(item: str) -> str:
    """Trailing spaces and blank edges off; the Song collection's '题目:' title prefix off."""
    lines = [line.rstrip() for line in item.strip("\n").split("\n")]
    lines = [TITLE_PREFIX.sub("", line) for line in lines]
    return "\n".join(lines).strip("\n")


def held_out(item: str, every: int) -> bool:
    """A stable 1-in-`every` choice from the item's text (not its position)."""
    digest = hashlib.sha256(item.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % every == 0


def content_lines(item: str) -> set[str]:
    """The item's lines that identify it: five or more CJK characters, not an attribution
    ('-- 《谚语》', '作者：杜甫') or a short heading ('其一'), which many items share."""
    lines = (line.strip() for line in item.split("\n"))
    return {
        line
        for line in lines
        if len(CJK.findall(line)) >= 5 and not line.startswith(("--", "作者"))
    }


def split_items(items: list[str], every: int, seed: int) -> tuple[list[str], list[str]]:
    """(training, held-out) items: duplicates dropped, held-out lines never in training."""
    unique = list(dict.fromkeys(items))
    train = [item for item in unique if not held_out(item, every)]
    candidates = [item for item in unique if held_out(item, every)]
    seen = set().union(*(content_lines(item) for item in train))
    heldout = []
    for item in candidates:
        (train if content_lines(item) & seen else heldout).append(item)
    random.Random(seed).shuffle(train)
    return train, heldout


def prepared_text(recipe: dict, weighted: bool = True) -> tuple[str, int]:
    """(text, index where the held-out items begin). `weighted`: training items of the
    sources in the recipe's `repeat` appear that many times (what the model trains on);
    without it each item once (what the classical baselines are given)."""
    data = recipe["data"]
    by_source = {Path(source).name: read_items(Path(source)) for source in data["sources"]}
    items = [item for source_items in by_source.values() for item in source_items]
    train, heldout = split_items(items, data["heldout_every"], data["seed"])
    if weighted:
        train = repeated(train, by_source, data.get("repeat", {}), data["seed"])
    head = SEPARATOR.join(train) + SEPARATOR
    return head + SEPARATOR.join(heldout) + "\n", len(head)


def repeated(
    train: list[str], by_source: dict[str, list[str]], repeat: dict[str, int], seed: int
) -> list[str]:
    """The training items, those of the sources named in `repeat` that many times over,
    reshuffled: the poems weigh more in training (held-out items are never repeated)."""
    if not repeat:
        return train
    times = {item: count for name, count in repeat.items() for item in by_source[name]}
    weighted = [item for item in train for _ in range(times.get(item, 1))]
    random.Random(seed).shuffle(weighted)
    return weighted


def check_cut(text: str, cut: int, fraction: float) -> None:
    """The trainer holds out the last `fraction` of the text: it must cut where the
    held-out items begin (else fix valid_fraction in the recipe to the printed value)."""
    from rnnedge.textio import tail_start

    if tail_start(len(text), fraction) != cut:
        exact = (len(text) - cut) / len(text)
        sys.exit(f"valid_fraction {fraction} does not cut at the held-out items: use {exact!r}")


def prepare(recipe: dict) -> tuple[Path, int]:
    """Write the prepared text (if absent) and check the split; (path, held-out start)."""
    from rnnedge.atomic import write_text_atomic

    target = ROOT / recipe["data"]["file"]
    text, cut = prepared_text(recipe)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, text)
    check_cut(text, cut, recipe["train"]["valid_fraction"])
    print(
        f"data: {target} ({len(text):,} characters, held out from {cut:,}: "
        f"{len(text) - cut:,} characters)",
        file=sys.stderr,
    )
    return target, cut


def split_info(recipe: dict, text: str, cut: int) -> dict[str, Any]:
    """What the card says about the split."""
    data = recipe["data"]
    items = [item for source in data["sources"] for item in read_items(Path(source))]
    train, heldout = split_items(items, data["heldout_every"], data["seed"])
    return {
        "items": len(items),
        "unique_items": len(train) + len(heldout),
        "train_items": len(train),
        "heldout_items": len(heldout),
        "chars": len(text),
        "train_chars": cut,
        "heldout_chars": len(text) - cut,
        "vocab": len(set(text)),
        "repeat": data.get("repeat", {}),
    }


def export(recipe: dict, recipe_path: Path, text_path: Path, cut: int) -> None:
    """Export best.pt (the recipe's precision), compare, golden vectors, manifest copy,
    samples and card."""
    from golden import write_golden
    from heldout_lm import comparison, samples

    from rnnedge.exporter import export_checkpoint

    output = ROOT / recipe["output"]
    run = ROOT / recipe["train"]["out"]
    result = export_checkpoint(
        run / recipe["export"]["checkpoint"],
        output,
        quantize=recipe["export"].get("quantize"),
        heldout=text_path,
        recipe=recipe_path.name,
        identity=recipe.get("identity"),
    )
    print(f"wrote {write_golden(output, GOLDEN_PROMPT)}", file=sys.stderr)
    # The baselines are given every training item once, as the data holds them; the model's
    # own file may weigh the poems more (recipe [data] repeat), which adds no information.
    text, cut = prepared_text(recipe, weighted=False)
    report = {
        "split": split_info(recipe, text, cut),
        "precision": recipe["export"].get("quantize") or "fp32",
        "comparison": comparison(recipe, output, text, cut),
        "samples": samples(output, recipe["card"]["prompts"], recipe["card"]["sampling"]),
        "line_form": line_form(recipe, output, text[:cut]),
    }
    output.with_suffix(".compare.json").write_text(
        json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    )
    write_card(recipe, output, result.size_bytes, report)


def clause_lengths(text: str, cut_short: bool = False) -> list[int]:
    """Lengths of the text's clauses (runs between Chinese punctuation or line breaks) made
    only of Chinese characters; attributions, titles and Latin text are left out. With
    `cut_short` the last clause is dropped (a sample ends where the token limit cut it)."""
    clauses = CLAUSE_BREAK.split(text)
    clauses = clauses[:-1] if cut_short else clauses
    return [len(c) for c in clauses if CJK_ONLY.fullmatch(c)]


def form_share(lengths: list[int]) -> dict[str, float | int]:
    """How many clauses, and which share of them have five or seven characters."""
    count = max(1, len(lengths))
    return {
        "clauses": len(lengths),
        "five": sum(n == 5 for n in lengths) / count,
        "seven": sum(n == 7 for n in lengths) / count,
    }


def line_form(recipe: dict, model_path: Path, train_text: str) -> dict[str, Any]:
    """Does the model write five- and seven-character lines? The share of such clauses in
    its samples (each card prompt, seeds 1..N), beside the real Tang and Song poems and the
    whole training text (mostly prose sayings)."""
    from rnnedge.runtime import load
    from rnnedge.runtime.sampling import SamplingConfig

    form = recipe["card"]["form"]
    lm = load(model_path, device="cpu", threads=1)
    sampling = SamplingConfig(temperature=form["temperature"])
    lengths = []
    for prompt in recipe["card"]["prompts"]:
        for seed in range(1, form["samples"] + 1):
            text = prompt + "".join(lm.generate(prompt, form["tokens"], sampling, seed=seed))
            lengths += clause_lengths(text, cut_short=True)
    poems = [item for source in form["poem_sources"] for item in read_items(Path(source))]
    return {
        "settings": form,
        "model": form_share(lengths),
        "poems": form_share(clause_lengths("\n".join(poems))),
        "training_text": form_share(clause_lengths(train_text)),
    }


def form_lines(form: dict[str, Any], model_name: str) -> list[str]:
    """The line-form comparison as a Markdown table."""
    settings = form["settings"]
    rows = [
        (
            f"`{model_name}` samples ({settings['samples']} seeds × each prompt, T "
            f"{settings['temperature']}, {settings['tokens']} tokens)",
            form["model"],
        ),
        ("the Tang and Song poems (tang300, song100)", form["poems"]),
        ("the whole training text (mostly prose sayings)", form["training_text"]),
    ]
    lines = ["| text | clauses | 5 characters | 7 characters |", "|---|---|---|---|"]
    lines += [
        f"| {name} | {s['clauses']:,} | {s['five']:.0%} | {s['seven']:.0%} |" for name, s in rows
    ]
    return lines


def comparison_lines(compare: dict, model_name: str, precision: str) -> list[str]:
    """The held-out comparison as a Markdown table (bits per character, lower is better)."""
    ngram, packed = compare.get("kneser_ney"), compare["compressors"]
    rows = [(f"this model (`{model_name}`, runtime, {precision})", compare["rnn"]["bpc"])]
    if ngram:
        rows.append(
            (f"Kneser-Ney {ngram['order']}-gram (order chosen on validation)", ngram["heldout_bpc"])
        )
    names = {"ppmd": "PPMd order 8 (7-Zip)", "xz": "xz -9e", "bz2": "bz2 -9"}
    rows += [(names[name], bpc) for name, bpc in packed.items()]
    lines = ["| model | held-out bits/char |", "|---|---|"]
    lines += [f"| {name} | {bpc:.4f} |" for name, bpc in sorted(rows, key=lambda r: r[1])]
    return lines


def weighting(repeat: dict[str, int]) -> str:
    """The card's sentence on training weights (empty when every item counts once)."""
    if not repeat:
        return ""
    named = ", ".join(f"{name} × {count}" for name, count in repeat.items())
    return (
        f" In training the items of {named} are repeated (reshuffled), so the model writes "
        "verse more often; the held-out items and the baselines' training text count "
        "each item once."
    )


def card_head(recipe: dict, model_path: Path, size: int, manifest: Any, split: dict) -> list[str]:
    """The card's first sections: the model, its data and split, its training."""
    arch, training = manifest.architecture, manifest.training
    return [
        f"# {recipe['name']}",
        "",
        f"Character-level {arch['cell'].upper()} language model of Chinese poems and sayings, "
        f"{arch['layers']} × {arch['hidden']}, embedding {arch['embed_dim']}, dropout "
        f"{arch['dropout']}, {arch['parameters']:,} parameters, vocabulary of "
        f"{split['vocab']:,} characters. File: `{model_path.name}`, {size / 1e6:.2f} MB "
        f"({manifest.export.get('quantization') or 'fp32'}; fp32 would be "
        f"{manifest.export.get('fp32_size_bytes', size) / 1e6:.2f} MB).",
        "",
        "## Data",
        "",
        "Debian's `fortunes-zh` (GPL-3.0+): the 300 Tang poems, 100 Song poems and the general "
        f"Chinese collection, {split['items']:,} items ({split['unique_items']:,} after exact "
        f"duplicates), colour escapes removed. Split by item (`export/poems.py`): "
        f"{split['heldout_items']} items ({split['heldout_chars']:,} characters) held out, "
        f"none sharing a line with the {split['train_items']:,} training items "
        f"({split['train_chars']:,} characters).{weighting(split.get('repeat', {}))}",
        "",
        "## Training",
        "",
        training_text(recipe, training),
        "",
    ]


def training_text(recipe: dict, training: dict) -> str:
    """The card's training paragraph: the stages of the recipe, the exported checkpoint."""
    which = "last" if recipe["export"]["checkpoint"] == "last.pt" else "best held-out"
    minutes = training["train_seconds"] / 60
    config = training["config"]
    exported = (
        f"exported from the {which} checkpoint, step {training['step']:,} of {config['steps']:,}"
    )
    if "base" not in recipe:
        return (
            f"Recipe `export/{recipe['name']}.toml`; {exported}, {minutes:.0f} min of "
            "training on one shared CPU core."
        )
    base_run = ROOT / recipe["base"]["train"]["out"]
    base = json.loads((base_run / "metrics.jsonl").read_text().splitlines()[-1])
    return (
        f"Recipe `export/{recipe['name']}.toml`, two stages. Stage 1 (`[base.train]`): "
        f"{base['step']:,} steps, {recipe['base']['train']['batching']} batching, "
        f"{base['seconds'] / 60:.0f} min. Stage 2 (`[train]`) starts from stage 1's best "
        f"checkpoint (`init_from`) and reads {config['batching']} windows of "
        f"{config['seq_len']} characters, each from a zero state, as generation starts from "
        f"one: {config['steps']:,} steps, {minutes:.0f} min; {exported}. One shared CPU core."
    )


def write_card(recipe: dict, model_path: Path, size: int, report: dict) -> None:
    """The model card: data, split, training, the comparison, samples."""
    from heldout_lm import command_line, verdict

    from rnnedge.render import validation_lines
    from rnnedge.runtime import load

    m = load(model_path, device="cpu").manifest
    split = report["split"]
    compare, ngram = report["comparison"], report["comparison"]["kneser_ney"]
    orders = ", ".join(f"{n}: {b:.3f}" for n, b in ngram["validation_bpc_by_order"].items())
    lines = [
        *card_head(recipe, model_path, size, m, split),
        "## Against classical models (same held-out items, bits per character)",
        "",
        *comparison_lines(compare, model_path.stem, report["precision"]),
        "",
        f"**{verdict(compare)}**",
        "",
        f"Every model predicts each of the {compare['heldout_chars']:,} held-out characters "
        "given all text before it (the training text first). The n-gram is "
        "`export/ngram.py` (interpolated Kneser-Ney); its order was chosen on the last 5 % "
        f"of the training items (validation bits/char by order: {orders}). PPMd: "
        "`7z -m0=PPMd:o=8:mem=1g`, 8 × (size(train + held-out) − size(train)) / characters.",
        "",
        "## Line form",
        "",
        "Clauses are the runs of Chinese characters between punctuation or line breaks "
        "(attributions and titles left out; a sample's last, cut-off clause too).",
        "",
        *form_lines(report["line_form"], model_path.stem),
        "",
        "## Samples",
        "",
    ]
    for sample in report["samples"]:
        lines += [
            f"`{command_line(model_path.stem, sample)}`:",
            "",
            "```",
            sample["text"],
            "```",
            "",
        ]
    lines += [
        "## Validation at export",
        "",
        *[f"- {line}" for line in validation_lines(m.validation)],
        "",
        f"Golden vectors for other runtimes: `{model_path.with_suffix('.golden.json').name}`.",
        "",
    ]
    model_path.with_suffix(".md").write_text("\n".join(lines))


def build(recipe: dict, stage: str, recipe_path: Path) -> None:
    """The recipe's stages: prepare always, then train and/or export."""
    from recipe_train import train

    text, cut = prepare(recipe)
    if stage in ("train", "all"):
        train(recipe, text)
    if stage in ("export", "all"):
        export(recipe, recipe_path, text, cut)


if __name__ == "__main__":
    import tomllib

    recipe = tomllib.loads(Path(sys.argv[1]).read_text())
    path, cut = prepare(recipe)
    print(json.dumps(split_info(recipe, path.read_text(encoding="utf-8"), cut), indent=1))
