"""The Node.js client (examples/node) gives byte for byte the Python CLI's text, seeded
sampling included, the same classifications, and passes every golden file.

Needs `node` and `npm` on PATH (skipped otherwise); installs the client's npm packages
(onnxruntime-node, CPU binary) on first use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnedge.runtime.prng import PortableRng
from rnnedge.runtime.sampling import SamplingConfig, exp64, sample_tokens
from rnnedge.tokenizer import WordTokenizer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "examples" / "node"
MODELS = ROOT / "models"
LANGID = MODELS / "fortune-langid.onnx"
UTF8 = {**os.environ, "PYTHONIOENCODING": "utf-8"}


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not on PATH: the Node.js client cannot be tested")
    if not (CLIENT / "node_modules" / "onnxruntime-node").is_dir():
        # ONNXRUNTIME_NODE_INSTALL=skip: the postinstall would download CUDA binaries; the
        # CPU one ships inside the package.
        env = {**os.environ, "ONNXRUNTIME_NODE_INSTALL": "skip"}
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=CLIENT,
            env=env,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return node


def run_node(node: str, script: str, *args: str, stdin: str | None = None) -> bytes:
    result = subprocess.run(
        [node, str(CLIENT / script), *args],
        input=None if stdin is None else stdin.encode(),
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def run_rnnedge(*args: str) -> bytes:
    command = [sys.executable, "-m", "rnnedge", *args]
    result = subprocess.run(command, capture_output=True, env=UTF8, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


GENERATIONS = [
    ("And God said", ["--temperature", "0"]),
    ("In the beginning", ["--seed", "1"]),  # the manifest's temperature (0.8)
    ("", ["--seed", "42", "--temperature", "1.0", "--top-k", "20", "--top-p", "0.9"]),
    ("Jesus wept.", ["--seed", "18446744073709551621", "--temperature", "0.6", "--top-p", "0.95"]),
    ("the €voice", ["--seed", "-3", "--top-k", "5", "--unknown", "skip"]),
]


@pytest.mark.parametrize(("prompt", "options"), GENERATIONS)
def test_generate_is_byte_identical_to_the_python_cli(node, prompt, options):
    args = ["--prompt", prompt, "--max-new-tokens", "600", *options]
    python = run_rnnedge("infer", "generate", *args)
    assert len(python) > 600
    assert run_node(node, "generate.mjs", *args) == python


SENTENCES = [
    "The weather was cold, so we stayed at home and read books.",
    "Das Wetter war kalt, also blieben wir zu Hause und lasen Bücher.",
    "Il pleut sur la ville.",
    "Мы остались дома.",
    "Tá sé fuar inniu.",
    "我们待在家里看书。",
    "ok",
]


def test_classify_matches_the_python_cli(node):
    python = [
        json.loads(line)
        for line in run_rnnedge(
            "infer", "classify", str(LANGID), *SENTENCES, "--top", "3", "--json"
        ).splitlines()
    ]
    ours = [
        json.loads(line)
        for line in run_node(
            node, "classify.mjs", str(LANGID), *SENTENCES, "--top", "3", "--json"
        ).splitlines()
    ]
    assert [a["input"] for a in ours] == SENTENCES
    for theirs, mine in zip(python, ours, strict=True):
        assert [t["label"] for t in mine["top"]] == [t["label"] for t in theirs["top"]]
        np.testing.assert_allclose(
            [t["probability"] for t in mine["top"]],
            [t["probability"] for t in theirs["top"]],
            rtol=0,
            atol=1e-6,
        )


def test_streaming_classification_matches_the_python_cli(node):
    text = "Das Wetter war kalt"
    python = run_rnnedge("infer", "classify", str(LANGID), text, "--stream", "--json")
    ours = run_node(node, "classify.mjs", text, "--stream", "--json")  # default model
    steps = [json.loads(line)["probabilities"] for line in python.splitlines()]
    mine = [json.loads(line)["probabilities"] for line in ours.splitlines()]
    assert len(mine) == len(steps) == len(text)
    for theirs, ours_step in zip(steps, mine, strict=True):
        assert list(ours_step) == list(theirs)
        np.testing.assert_allclose(list(ours_step.values()), list(theirs.values()), atol=1e-6)


@pytest.mark.parametrize("golden", sorted(MODELS.glob("*.golden.json")), ids=lambda p: p.name)
def test_node_client_passes_the_golden_vectors(node, golden):
    report = json.loads(run_node(node, "check-golden.mjs", str(golden)))
    failed = [check for check in report["checks"] if not check["passed"]]
    assert report["checks"] and not failed


def sampling_cases() -> list[dict]:
    """Random rows plus rows built to hit the tie rules, with settings covering each step."""
    rng = np.random.default_rng(5)
    rows = [rng.normal(0, scale, 97).astype(np.float32) for scale in (0.5, 2.0, 8.0)]
    rows.append(np.repeat(np.float32([3.0, 1.0, 2.0]), 20))  # many exact ties
    rows.append(np.float32([0.0] * 50 + [-1e30] * 10))  # weights underflow to 0
    settings = [(0.0, 0, 1.0), (1.0, 0, 1.0), (0.8, 20, 0.95), (1.3, 5, 1.0), (0.5, 0, 0.3)]
    return [
        {"logits": row.tolist(), "temperature": t, "top_k": k, "top_p": p, "seed": str(seed)}
        for seed, (row, (t, k, p)) in enumerate(
            (row, setting) for row in rows for setting in settings
        )
    ]


def python_draws(case: dict, draws: int) -> list[int]:
    config = SamplingConfig(case["temperature"], case["top_k"], case["top_p"])
    rng, logits = PortableRng(int(case["seed"])), np.float32(case["logits"])[None]
    return [
        int(
            sample_tokens(
                logits, [config], np.array([rng.random() if config.temperature else 0.0])
            )[0]
        )
        for _ in range(draws)
    ]


def test_sampling_prng_exp_and_word_split_agree_bit_for_bit(node):
    cases = sampling_cases()
    exp_inputs = [*(-np.random.default_rng(1).random(3000) * 720).tolist(), 0.0, -708.0]
    texts = [
        "Don't stop_me now, ΣΟΦΟΣ! 3.5 ½\x1cé\u0301 ok\ufeffend\x85x",
        "İstanbul'da ¿qué? 你好。",
    ]
    request = {
        "exp": exp_inputs,
        "uniforms": [{"seed": "1234567", "count": 1000}, {"seed": "-1", "count": 10}],
        "cases": [{**case, "draws": 200} for case in cases],
        "split": texts,
    }
    answer = json.loads(run_node(node, "../../tests/node/cases.mjs", stdin=json.dumps(request)))
    assert answer["exp"] == exp64(np.array(exp_inputs)).tolist()
    for spec, uniforms in zip(request["uniforms"], answer["uniforms"], strict=True):
        rng = PortableRng(int(spec["seed"]))
        assert uniforms == [rng.random() for _ in range(spec["count"])]
    for case, tokens in zip(cases, answer["tokens"], strict=True):
        assert tokens == python_draws(case, 200)
    assert answer["split"] == [WordTokenizer.split(text) for text in texts]


def without_metadata(model: bytes) -> bytes:
    """The model's bytes with its top-level metadata_props (ModelProto field 14) removed."""

    def varint(at: int) -> tuple[int, int]:
        value, shift = 0, 0
        while True:
            byte = model[at]
            value, shift, at = value | (byte & 0x7F) << shift, shift + 7, at + 1
            if byte < 0x80:
                return value, at

    kept, at = bytearray(), 0
    while at < len(model):
        tag, body = varint(at)
        assert tag & 7 in (0, 2), "top-level ModelProto fields are varints or bytes"
        end = varint(body)[1] if tag & 7 == 0 else sum(varint(body))
        if tag >> 3 != 14:
            kept += model[at:end]
        at = end
    return bytes(kept)


def test_a_manifest_json_beside_a_model_without_metadata_is_used(node, tmp_path):
    model = tmp_path / "bare.onnx"
    model.write_bytes(without_metadata((MODELS / "kjv-char-lstm.onnx").read_bytes()))
    args = [str(model), "--prompt", "And", "--max-new-tokens", "50", "--temperature", "0"]
    refused = subprocess.run([node, str(CLIENT / "generate.mjs"), *args], capture_output=True)
    assert refused.returncode == 1 and refused.stdout == b""
    assert b"not an rnnedge model" in refused.stderr and refused.stderr.count(b"\n") == 1
    manifest = run_rnnedge("inspect", str(MODELS / "kjv-char-lstm.onnx"), "--json")
    (tmp_path / "bare.manifest.json").write_text(json.dumps(json.loads(manifest)["manifest"]))
    expected = run_rnnedge("infer", "generate", str(MODELS / "kjv-char-lstm.onnx"), *args[1:])
    assert run_node(node, "generate.mjs", *args) == expected
