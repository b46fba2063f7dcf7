"""Rebuild a shipped model from its recipe: prepare the data, train, export, evaluate.

    python export/build.py export/kjv-char-lstm.toml [--stage prepare|train|export|all]

Training resumes from ``runs/<name>/last.pt`` when it exists, so an interrupted build
continues where it stopped.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import tomllib
from golden import write_golden
from recipe_train import final_text, train

ROOT = Path(__file__).resolve().parent.parent
VERSE_REFERENCE = re.compile(r"^\S+?\d+:\d+ ")


def strip_verse_references(raw: str) -> str:
    """'Ge1:1 In the beginning…' lines → 'In the beginning…', one verse per line."""
    verses = [VERSE_REFERENCE.sub("", line) for line in raw.split("\n") if line.strip()]
    return "\n".join(verses) + "\n"


PREPARATIONS = {"strip-verse-references": strip_verse_references}


def prepare(recipe: dict) -> Path:
    data = recipe["data"]
    target = ROOT / data["file"]
    if not target.exists():
        raw = subprocess.run(data["command"], check=True, capture_output=True, text=True).stdout
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(PREPARATIONS[data["preparation"]](raw))
    print(f"data: {target} ({len(target.read_text())} characters)", file=sys.stderr)
    if "excerpt" in data:
        write_excerpt(target, data["excerpt"])
    return target


def write_excerpt(text: Path, excerpt: dict) -> None:
    """`text` from the line that starts with excerpt["first_line"] to where its held-out
    tail (the last excerpt["heldout_fraction"]) begins: a fine-tuning stage's text (e.g. the
    Gospels and Acts), none of the held-out text in it."""
    from rnnedge.textio import tail_start

    whole = text.read_text()
    start = whole.find("\n" + excerpt["first_line"]) + 1
    if start == 0:
        raise SystemExit(f"error: no line of {text} starts with {excerpt['first_line']!r}")
    end = tail_start(len(whole), excerpt["heldout_fraction"])
    target = ROOT / excerpt["file"]
    target.write_text(whole[start:end])
    print(f"data: {target} ({end - start} characters)", file=sys.stderr)


def export(recipe: dict, text: Path) -> None:
    from rnnedge.exporter import export_checkpoint

    run = ROOT / recipe["train"]["out"]
    options = recipe["export"]
    output = ROOT / recipe["output"]
    checkpoint = run / options["checkpoint"]
    if options.get("calibrate") == "temperature":
        checkpoint = calibrated(checkpoint, final_text(recipe, text))
    result = export_checkpoint(
        checkpoint,
        output,
        quantize=options.get("quantize"),
        heldout=heldout_file(recipe, text),
        recipe=Path(sys.argv[1]).name,
        identity=recipe.get("identity"),
    )
    print(f"wrote {write_golden(output, GOLDEN_PROMPT)}", file=sys.stderr)
    write_manifest_companion(output)
    from compress_compare import COMPRESSORS, compare

    # The held-out text against gzip, xz, bzip2, PPMd and zpaq (a few minutes, mostly zpaq).
    comparison = compare(text, output, list(COMPRESSORS))
    output.with_suffix(".compare.json").write_text(json.dumps(comparison, indent=2) + "\n")
    write_card(recipe, output, result.size_bytes)


GOLDEN_PROMPT = "And God said"


def heldout_file(recipe: dict, text: Path) -> Path:
    """What export measures the model's int8 change on: the training text (the exporter
    takes its held-out tail), or for a stage trained on an excerpt, the main text's held-out
    tail written beside the run (not the excerpt's own tail, its validation split)."""
    if final_text(recipe, text) == text:
        return text
    from rnnedge.textio import heldout_tail

    fraction = recipe["base"]["train"]["valid_fraction"]
    target = ROOT / recipe["train"]["out"] / "heldout.txt"
    target.write_text(heldout_tail(text.read_text(), fraction))
    return target


def calibrated(checkpoint: Path, text: Path) -> Path:
    """The checkpoint with a temperature fitted on its run's validation split of `text`
    folded into the output layer (export/calibrate.py), written beside it."""
    from calibrate import calibrate

    target = checkpoint.with_name(f"{checkpoint.stem}-calibrated.pt")
    record = calibrate(checkpoint, text, target)
    print(
        f"calibration: T = {record['temperature']} on {record['fitted_on']}: "
        f"{record['bpc_before']:.4f} -> {record['bpc_after']:.4f} bits/char",
        file=sys.stderr,
    )
    return target


def write_card(recipe: dict, model_path: Path, size: int) -> None:
    """The model card: data, training, validation and quality figures, from the manifest."""
    from rnnedge.render import validation_lines
    from rnnedge.runtime import load
    from rnnedge.runtime.sampling import SamplingConfig

    lm = load(model_path, device="cpu")
    m = lm.manifest
    training, arch = m.training, m.architecture
    sample = "".join(lm.generate(GOLDEN_PROMPT, 300, SamplingConfig(temperature=0.7), seed=1))
    lines = [
        f"# {recipe['name']}",
        "",
        f"Character-level {arch['cell'].upper()} language model, {arch['layers']} × "
        f"{arch['hidden']}, embedding {arch['embed_dim']}, dropout {arch['dropout']}, "
        f"{arch['parameters']:,} parameters, vocabulary of {len(m.tokenizer['vocab'])} characters.",
        f"File: `{model_path.name}`, {size / 1e6:.2f} MB ({m.export.get('quantization') or 'fp32'}"
        f"; fp32 would be {m.export.get('fp32_size_bytes', size) / 1e6:.2f} MB).",
        "",
        *data_lines(recipe),
        *training_lines(recipe, training),
        *compressor_section(model_path),
        "## Validation at export",
        "",
        *[f"- {line}" for line in validation_lines(m.validation)],
        "",
        "## Sample",
        "",
        f'`rnnedge infer generate --prompt "{GOLDEN_PROMPT}" --temperature 0.7 --seed 1 '
        "--max-new-tokens 300`:",
        "",
        "```",
        GOLDEN_PROMPT + sample,
        "```",
        "",
        f"Golden vectors for other runtimes: `{model_path.with_suffix('.golden.json').name}`.",
        "",
    ]
    model_path.with_suffix(".md").write_text("\n".join(lines))


def data_lines(recipe: dict) -> list[str]:
    """The card's Data section: the whole prepared text and its held-out tail."""
    from compress_compare import sha256

    from rnnedge.textio import tail_start

    data = recipe["data"]
    text = (ROOT / data["file"]).read_text()
    fraction = (recipe.get("base") or recipe)["train"]["valid_fraction"]
    held = len(text) - tail_start(len(text), fraction)
    sha = sha256(ROOT / data["file"])
    return [
        "## Data",
        "",
        f"The King James Bible from Debian's `bible-kjv` ({' '.join(data['command'])}), "
        f"verse references removed, one verse per line: {len(text):,} characters (sha256 "
        f"`{sha[:16]}…`). The last {fraction:.0%} ({held:,} characters, the last words of "
        "Acts 21:40, then Acts 22 to Revelation) is held out and never trained on.",
        "",
    ]


def training_lines(recipe: dict, training: dict) -> list[str]:
    """The card's Training section: one stage, or a base stage and a fine-tuning stage."""
    config = training["config"]
    run = f"{training['train_seconds'] / 60:.0f} min on this machine's CPU " + (
        f"({threads_text(config.get('threads', 2))}, {config.get('precision', 'bf16')})"
    )
    lines = ["## Training", ""]
    if "base" not in recipe:
        return [
            *lines,
            f"Recipe `export/{recipe['name']}.toml`, exported from the best held-out "
            f"checkpoint: step {training['step']:,} of {config['steps']:,}, reached after {run}.",
            f"Held-out (torch, fp32): **{training['best_valid_bpc']:.4f} bits/char**, "
            f"perplexity {training['valid'].get('perplexity', float('nan')):.3f} at the last "
            "evaluation.",
            "",
        ]
    data = training["data"]
    lines += [
        f"Recipe `export/{recipe['name']}.toml`, two stages. Stage 1 (`[base.train]`, "
        "v1.1.0) trains on the whole training text. Stage 2 fine-tunes it on "
        f"`{Path(data['path']).name}` ({data['chars']:,} characters: Matthew 1:1 to the "
        "held-out tail, the books nearest it), dropout "
        f"{config['dropout']}, {config['steps']:,} steps at peak rate {config['lr']} "
        f"({run}), and is exported from step {training['step']:,}. Its last "
        f"{data['valid_fraction']:.0%} ({data['valid_chars']:,} characters, Acts 10:32 to "
        f"21:40) is its validation split: {training['valid']['bpc']:.4f} bits/char there.",
    ]
    calibration = training.get("calibration")
    if calibration:
        lines.append(
            f"A temperature T = {calibration['temperature']} fitted on that validation split "
            f"({calibration['bpc_before']:.4f} → {calibration['bpc_after']:.4f} bits/char "
            "there) is folded into the output layer (`export/calibrate.py`): the file "
            "predicts softmax(logits / T) with the same graph. The held-out tail played no "
            "part in fitting it."
        )
    return [*lines, ""]


def threads_text(threads: int) -> str:
    return "1 thread" if threads == 1 else f"{threads} threads"


def compressor_section(model_path: Path) -> list[str]:
    """The card's table against classical compressors, from MODEL.compare.json
    (export/compress_compare.py), only if that file measured this very model file."""
    from compress_compare import markdown, sha256

    path = model_path.with_suffix(".compare.json")
    comparison = json.loads(path.read_text()) if path.exists() else {}
    if comparison.get("model", {}).get("sha256") != sha256(model_path):
        return []
    return [
        "## Against classical compressors (same held-out characters)",
        "",
        "Each compressor is given the training text as context and charged only for what the "
        "held-out tail adds: 8 × (size(train + held-out) − size(train)) / held-out characters "
        f"({comparison['heldout_chars']:,}). Measured by `export/compress_compare.py` on this "
        "machine. The model's figure is the runtime's own `rnnedge eval --warmup 1000`: like a "
        "compressor it predicts each held-out character after the text before it (the tail is "
        "read as 32 slices, each after the 1,000 characters before it; the < 32 characters "
        "that do not fill a slice go unscored).",
        "",
        *markdown(comparison),
        "",
        *adaptive_reading_note(comparison),
    ]


def adaptive_reading_note(comparison: dict) -> list[str]:
    """How the adaptive row was read and its rate chosen (nothing when it was not measured)."""
    adaptive = comparison.get("model_adaptive")
    if not adaptive:
        return []
    tuning = adaptive["rate_tuning"]
    tried = ", ".join(f"{r} → {b:.4f}" for r, b in tuning["bits_per_char_by_rate"].items())
    return [
        "**Adaptive reading** (`rnnedge eval --adapt`): compressors adapt to the text they "
        "read; so may the model. Read in order as one stream, after each character is scored "
        "an additive correction of the output layer (reading every layer's hidden state) takes "
        "one SGD step on it (dynamic evaluation of the output layer: the ONNX file is "
        "unchanged, and every character is predicted before it is learnt). The plain "
        '"this model" row reads the file statically, as it ships; the adaptive row reads the '
        f"same file that way. The rate {tuning['rate']} was chosen on "
        f"the last {tuning['chars']:,} characters of the training text, never on the held-out "
        f"tail (bits/char there by rate: {tried}).",
        "",
    ]


def rnnedge_cli(args: list[str]) -> str:
    """Run the rnnedge CLI as a user would; its stdout."""
    command = [sys.executable, "-m", "rnnedge", *args]
    return subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout


def option_value(args: list[str], option: str) -> Path | None:
    """The value after `option` in a recipe's argument list, as a path (None if absent)."""
    return Path(args[args.index(option) + 1]) if option in args else None


def build_with_cli(recipe: dict, stage: str) -> None:
    """Recipes of kind "cli": train with the CLI, export, score the test set with the runtime."""
    from rnnedge.exporter import export_checkpoint

    if recipe.get("prepare") == "fortunes-langid" and stage != "export":
        # Not again at export: the split follows the items found, and a package installed
        # since training could move a test item into what the checkpoint was trained on.
        from fortunes import prepare_langid

        sources = tuple(recipe.get("sources", ["fortunes"]))
        print(prepare_langid(ROOT / recipe["data"], sources=sources), file=sys.stderr)
    if stage in ("train", "all"):
        rnnedge_cli(recipe["train"])
    if stage in ("export", "all"):
        output = ROOT / recipe["output"]
        result = export_checkpoint(
            ROOT / recipe["checkpoint"],
            output,
            recipe=recipe["name"],
            identity=recipe.get("identity"),
        )
        scores = json.loads(
            rnnedge_cli([a.replace("{model}", str(output)) for a in recipe["evaluate"]])
        )
        output.with_suffix(".eval.json").write_text(json.dumps(scores, indent=2) + "\n")
        variants = {"fp32": output}
        if recipe.get("int8_output"):
            # The int8 twin: its held-out accuracy change is measured at export and kept in
            # its manifest (validation.quality).
            variants["int8"] = ROOT / recipe["int8_output"]
            export_checkpoint(
                ROOT / recipe["checkpoint"],
                variants["int8"],
                quantize="int8",
                heldout=ROOT / recipe["heldout"],
                recipe=recipe["name"],
                identity=recipe.get("identity"),
            )
        comparison = None
        if recipe.get("compare") == "langid":
            from langid_compare import compare

            comparison = compare(variants, ROOT / recipe["data"])
            output.with_suffix(".compare.json").write_text(json.dumps(comparison, indent=2) + "\n")
        for variant in variants.values():
            write_companions(variant, images=option_value(recipe["evaluate"], "--images"))
        write_classifier_card(recipe, output, result.size_bytes, scores, comparison, variants)


def write_companions(model: Path, images: Path | None) -> None:
    """Beside a classifier: its golden vectors and the JSON copy of its manifest."""
    print(f"wrote {write_golden(model, images=images)}", file=sys.stderr)
    write_manifest_companion(model)


def write_manifest_companion(model: Path) -> None:
    """MODEL.manifest.json: the JSON copy of its manifest (JavaScript runtimes cannot read
    ONNX metadata)."""
    from rnnedge.runtime import load
    from rnnedge.runtime.catalog import manifest_json_path, write_manifest_json

    write_manifest_json(load(model, device="cpu").manifest, manifest_json_path(model))


def ngram_text(arch: dict) -> str:
    """How a classifier's hashed n-gram inputs are sized, for its card ('' if it has none)."""
    if not arch.get("ngram_max"):
        return ""
    width = arch.get("ngram_dim") or arch.get("embed_dim")
    return (
        f", hashed token 2- to {arch['ngram_max']}-grams added to each step's input "
        f"({arch['ngram_buckets']:,} rows of {width} per order)"
    )


def write_classifier_card(
    recipe: dict,
    model_path: Path,
    size: int,
    scores: dict,
    comparison: dict | None = None,
    variants: dict[str, Path] | None = None,
) -> None:
    """The card of a classifier: data, training, validation and the test-set figures."""
    from rnnedge.render import validation_lines
    from rnnedge.runtime import load_classifier

    m = load_classifier(model_path, device="cpu").manifest
    arch, training = m.architecture, m.training
    direction = "bidirectional" if arch["bidirectional"] else "unidirectional"
    recall = ", ".join(
        f"{label} {r:.3f}" for label, r in zip(m.labels, scores["recall"], strict=True)
    )
    lines = [
        f"# {recipe['name']}",
        "",
        f"{direction.capitalize()} {arch['cell'].upper()} {arch['layers']} × {arch['hidden']}, "
        f"{arch['pooling']} pooling{ngram_text(arch)}, {arch['parameters']:,} parameters, "
        f"{len(m.labels)} classes; "
        f"`{model_path.name}` {size / 1e6:.2f} MB (fp32).",
        "",
        f"Training: `rnnedge {' '.join(recipe['train'])}`. Exported from the best validation "
        f"checkpoint: step {training['step']:,} of {training['config']['steps']:,}, reached after "
        f"{training['train_seconds'] / 60:.1f} min on this machine's CPU, validation accuracy "
        f"{training.get('best_valid_accuracy', float('nan')):.4f}.",
        "",
        "## Test set (scored once, by the runtime)",
        "",
        f"`rnnedge {' '.join(recipe['evaluate']).replace('{model}', str(model_path.name))}`: "
        f"**accuracy {scores['accuracy']:.4f}**, macro-F1 {scores['macro_f1']:.4f} over "
        f"{scores['examples']:,} examples. Recall per class: {recall}.",
        "",
        "## Validation at export",
        "",
        *[f"- {line}" for line in validation_lines(m.validation)],
        "",
    ]
    if variants and "int8" in variants:
        int8 = load_classifier(variants["int8"], device="cpu").manifest
        lines += [
            f"## int8 twin: `{variants['int8'].name}` "
            f"({variants['int8'].stat().st_size / 1e6:.2f} MB)",
            "",
            "Dynamic int8 (weights int8; activations quantized per call, so an answer moves "
            "slightly with what else is in its batch: the drift below). Rebuilt by the same "
            f"recipe with `rnnedge export … --quantize int8 --heldout {recipe['heldout']}`.",
            "",
            *[
                f"- {line}"
                for line in validation_lines(
                    {k: v for k, v in int8.validation.items() if k in ("int8", "quality")}
                )
            ],
            "",
        ]
    if comparison:
        from langid_compare import about_test_sets, markdown

        lines += [
            "## Against langid.py (same languages, same held-out snippets, this machine)",
            "",
            *markdown(comparison),
            "",
            *about_test_sets(comparison),
            "",
        ]
    model_path.with_suffix(".md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--stage", choices=["prepare", "train", "export", "all"], default="all")
    args = parser.parse_args()
    recipe = tomllib.loads(args.recipe.read_text())
    if recipe.get("kind") == "cli":
        build_with_cli(recipe, args.stage)
        return
    if recipe.get("kind") in ("poems", "shakespeare"):
        # Language models whose held-out part is whole documents (export/poems.py,
        # export/shakespeare.py): own preparation, comparison with classical models, card.
        importlib.import_module(recipe["kind"]).build(recipe, args.stage, args.recipe)
        return
    text = prepare(recipe)
    if args.stage in ("train", "all"):
        train(recipe, text)
    if args.stage in ("export", "all"):
        export(recipe, text)


if __name__ == "__main__":
    main()
