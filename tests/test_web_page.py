"""The browser page (examples/web) in real headless Chromium: fp32 text byte for byte the
Python CLI's (greedy and seeded), classifications within 1e-6, the language box naming the
language as it is typed, and the int8 model's agreement measured, its first difference
explained as a near-tie.

Needs node/npm and Debian's chromium (apt-get install chromium); skipped otherwise. Installs
the page's npm packages (onnxruntime-web, playwright-core) on first use and serves the page
with `python -m http.server` on 127.0.0.1, stopped by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rnnedge.runtime import load
from rnnedge.runtime.prng import PortableRng
from rnnedge.runtime.sampling import SamplingConfig, exp64

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "examples" / "web"
CHROMIUM = Path("/usr/bin/chromium")
UTF8 = {**os.environ, "PYTHONIOENCODING": "utf-8"}


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not on PATH: the browser page cannot be tested")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        command = [npm, "ci", "--no-audit", "--no-fund"]
        subprocess.run(command, cwd=WEB, check=True, capture_output=True, timeout=600)
    return node


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[str]:
    """http://127.0.0.1:PORT/ serving examples/ and models/ plus extra/ (the tiny model)."""
    root = tmp_path_factory.mktemp("site")
    for name in ("examples", "models"):
        (root / name).symlink_to(ROOT / name)
    (root / "extra").mkdir()
    shutil.copy(tiny_model, root / "extra" / "tiny.onnx")
    server = subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
            root,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (…) ..."
        assert "port" in line, f"http.server did not start: {line!r}"
        yield f"http://127.0.0.1:{line.split('port')[1].split()[0]}/"
    finally:
        server.terminate()  # our own child, by its PID
        server.wait(timeout=30)


def drive(node: str, site: str, tasks: list[dict], query: str = "") -> dict:
    request = {"url": f"{site}examples/web/{query}", "tasks": tasks}
    result = subprocess.run(
        [node, str(ROOT / "tests" / "web" / "drive.mjs")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["ready"] == "true", answer["console"]
    return answer


def cli_generate(model: Path, prompt: str, options: list[str]) -> str:
    args = ["infer", "generate", str(model), "--prompt", prompt, *options]
    result = subprocess.run(
        [sys.executable, "-m", "rnnedge", *args], capture_output=True, env=UTF8, timeout=300
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


FP32_CASES = [  # prompt, page options, the same as CLI options
    ("the lord", {"temperature": 0}, ["--temperature", "0"]),
    ("and", {"temperature": 0.9, "seed": "1"}, ["--temperature", "0.9", "--seed", "1"]),
    (
        "",
        {"temperature": 1.0, "topK": 5, "seed": "7"},
        ["--temperature", "1", "--top-k", "5", "--seed", "7"],
    ),
    (
        "moses",
        {"temperature": 0.7, "topP": 0.9, "seed": "-2"},
        ["--temperature", "0.7", "--top-p", "0.9", "--seed", "-2"],
    ),
]


def test_fp32_text_in_chromium_is_byte_identical_to_the_cli(node, site, tiny_model):
    url = f"{site}extra/tiny.onnx"
    tasks = [
        {"kind": "generate", "model": url, "prompt": p, "maxNewTokens": 600, **options}
        for p, options, _ in FP32_CASES
    ]
    tasks += [  # the same through the form, as a user would
        {
            "kind": "ui-generate",
            "model": url,
            "prompt": "the lord",
            "temperature": 0,
            "seed": "",
            "maxNewTokens": 300,
        },
        {
            "kind": "ui-generate",
            "model": url,
            "prompt": "and",
            "temperature": 0.9,
            "seed": "1",
            "maxNewTokens": 300,
        },
    ]
    answer = drive(node, site, tasks, "?lm=../../extra/tiny.onnx")
    for (prompt, _, options), text in zip(FP32_CASES, answer["results"], strict=False):
        expected = cli_generate(tiny_model, prompt, ["--max-new-tokens", "600", *options])
        assert prompt + text + "\n" == expected
    for task, shown in zip(tasks[-2:], answer["results"][-2:], strict=True):
        options = ["--temperature", str(task["temperature"]), "--max-new-tokens", "300"]
        options += ["--seed", task["seed"]] if task["seed"] else []
        assert shown["status"].startswith("done")
        assert shown["output"] + "\n" == cli_generate(tiny_model, task["prompt"], options)


SENTENCES = {
    "de": "Das Wetter war kalt, also blieben wir zu Hause.",
    "es": "Hacía frío, así que nos quedamos en casa.",
    "ru": "Было холодно, поэтому мы остались дома.",
    "zh": "天气很冷，所以我们待在家里。",
    "en": "It was cold, so we stayed at home.",
}


def test_language_box_and_classification_match_python(node, site):
    model_path = ROOT / "models" / "fortune-langid.onnx"
    url = f"{site}models/fortune-langid.onnx"
    tasks = [{"kind": "classify", "model": url, "text": text} for text in SENTENCES.values()]
    tasks.append({"kind": "ui-type", "text": SENTENCES["de"]})
    answer = drive(node, site, tasks)
    classifier = load(model_path, device="cpu", threads=1)
    for text, probs in zip(SENTENCES.values(), answer["results"], strict=False):
        expected = classifier.classify([text])[0].probabilities
        np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-6)
    assert [classifier.labels[int(np.argmax(p))] for p in answer["results"][:-1]] == list(SENTENCES)
    typed = answer["results"][-1]
    assert typed["verdict"].startswith("German (de)")
    assert typed["status"] == f"{len(SENTENCES['de'])} characters read"
    assert [label for label, _ in typed["bars"]] == classifier.labels


def first_difference(a: str, b: str) -> int | None:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)


def step_margins(lm, prompt: str, text: str, sampling: SamplingConfig, seed: int | None):
    """How near the line between tokens each of Python's draws of `text` after `prompt` was:
    |u * total - nearest edge of the drawn token's interval| / total (greedy: the gap between
    the top two logits). A margin per character of `text`."""
    ids = lm.tokenizer.encode(prompt + text)
    logits, _ = lm.run(ids[None, :], lm.initial_state(1))
    rows = logits[0, len(prompt) - 1 : len(ids) - 1].astype(np.float64)  # [N, V]: -> text[i]
    if sampling.temperature == 0:
        top = np.sort(rows, axis=1)
        return top[:, -1] - top[:, -2]
    rng = PortableRng(seed)
    uniforms = np.array([rng.random() for _ in range(len(text))])  # one draw per character
    scaled = rows / sampling.temperature
    weights = exp64(scaled - scaled.max(axis=1, keepdims=True))
    cumulative = np.cumsum(weights, axis=1)
    steps, drawn = np.arange(len(text)), ids[len(prompt) :]
    upper = cumulative[steps, drawn]
    lower = upper - weights[steps, drawn]
    point = uniforms * cumulative[:, -1]
    return np.minimum(point - lower, upper - point) / cumulative[:, -1]


def draw_margin(lm, prefix: str, sampling: SamplingConfig, uniform: float, pair: tuple[int, int]):
    """How near a tie the draw between the two tokens was: |u * total - boundary| / total,
    with Python's weights after `prefix` (greedy: the gap between the two logits)."""
    logits, _ = lm.run(lm.tokenizer.encode(prefix)[None, :], lm.initial_state(1))
    row = logits[0, -1].astype(np.float64)
    if sampling.temperature == 0:
        return float(abs(row[pair[0]] - row[pair[1]]))
    weights = exp64(row / sampling.temperature - (row / sampling.temperature).max())
    cumulative = np.cumsum(weights)
    boundary = cumulative[min(pair)]  # between the lower id and the ids after it
    return float(abs(uniform * cumulative[-1] - boundary) / cumulative[-1])


def test_int8_text_agreement_is_measured_and_its_first_difference_is_a_near_tie(node, site):
    model_path = ROOT / "models" / "kjv-char-lstm.onnx"
    url = f"{site}models/kjv-char-lstm.onnx"
    runs = [({"temperature": 0}, None)] + [
        ({"temperature": 0.8, "seed": str(s)}, s) for s in (1, 2, 3)
    ]
    tasks = [
        {"kind": "generate", "model": url, "prompt": "And God said", "maxNewTokens": 600, **o}
        for o, _ in runs
    ]
    answer = drive(node, site, tasks)
    lm = load(model_path, device="cpu", threads=1)
    report = []
    for (options, seed), text in zip(runs, answer["results"], strict=True):
        sampling = SamplingConfig(temperature=options["temperature"])
        expected = "".join(lm.generate("And God said", 600, sampling, seed=seed))
        at = first_difference(text, expected)
        entry = {"seed": seed, "agree": len(text) if at is None else at}
        if at is not None:
            rng = PortableRng(seed)
            uniform = [rng.random() for _ in range(at + 1)][-1] if seed is not None else 0.0
            pair = (lm.tokenizer.encode(expected[at])[0], lm.tokenizer.encode(text[at])[0])
            entry["margin"] = draw_margin(
                lm, "And God said" + expected[:at], sampling, uniform, pair
            )
            # wasm's int8 kernels move logits a little (~1e-2, growing as the state drifts over
            # hundreds of steps): a difference must come from a draw (or argmax) close to the
            # line between two tokens, by this text's own standard: among the closest 10 % of
            # the draws before it. A sampling or state bug diverges at a typical draw: all
            # four runs landing in the closest 10 % by chance has odds of 1e-4. (An absolute
            # bound of 0.02 held for 1.1.0 but not for 1.2.0's flatter, calibrated logits:
            # its greedy run parts at a 0.056 logit gap, among its 2 % closest.)
            before = step_margins(lm, "And God said", expected[:at], sampling, seed)
            entry["closest_10_percent"] = float(np.quantile(before, 0.10))
            assert entry["margin"] <= entry["closest_10_percent"], entry
        report.append(entry)
    print("int8 wasm vs native agreement (characters of 600):", json.dumps(report))
    assert report[0]["agree"] >= 100  # greedy: no near-tie in the first lines
