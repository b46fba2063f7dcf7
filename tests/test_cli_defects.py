"""CLI defects found in the contract review, each checked by behaviour: --no-echo with many
streams, the manifest's top_k / top_p defaults, thread counts, resume's typed options."""

from __future__ import annotations

import json
from pathlib import Path

import onnx

from helpers import error_line, invoke, succeeded
from rnnedge.contract import MANIFEST_KEY


def with_sampling(source: Path, target: Path, sampling: dict) -> Path:
    """A copy of `source` whose manifest's sampling defaults are `sampling`."""
    model = onnx.load(str(source), load_external_data=False)
    entry = next(p for p in model.metadata_props if p.key == MANIFEST_KEY)
    manifest = json.loads(entry.value)
    manifest["sampling"] = sampling
    entry.value = json.dumps(manifest)
    target.write_bytes(model.SerializeToString())
    return target


def test_no_echo_holds_with_many_streams(tiny_model: Path) -> None:
    args = ["infer", "generate", tiny_model, "--prompt", "behold", "--max-new-tokens", "8"]
    echoed = succeeded(invoke(*args, "--num-streams", "2", "--seed", "1")).stdout
    quiet = succeeded(invoke(*args, "--num-streams", "2", "--seed", "1", "--no-echo")).stdout
    assert echoed.count("behold") >= 2
    assert quiet.replace("--- stream 0 ---\n", "").replace("--- stream 1 ---\n", "") == (
        echoed.replace("--- stream 0 ---\nbehold", "").replace("--- stream 1 ---\nbehold", "")
    )


def test_manifest_top_k_default_is_applied(tiny_model: Path, tmp_path: Path) -> None:
    # top_k 1 keeps only the most likely token: sampling at any temperature is then greedy.
    top1 = with_sampling(tiny_model, tmp_path / "top1.onnx", {"temperature": 1.5, "top_k": 1})
    args = ["--prompt", "and the", "--max-new-tokens", "60"]
    sampled = succeeded(invoke("infer", "generate", top1, *args, "--seed", "3")).stdout
    greedy = succeeded(invoke("infer", "generate", tiny_model, *args, "--temperature", "0"))
    assert sampled == greedy.stdout
    # A flag still overrides the model's default.
    free = succeeded(invoke("infer", "generate", top1, *args, "--seed", "3", "--top-k", "0"))
    assert free.stdout != greedy.stdout


def test_manifest_top_p_default_is_applied(tiny_model: Path, tmp_path: Path) -> None:
    tiny_p = with_sampling(tiny_model, tmp_path / "p.onnx", {"temperature": 1.5, "top_p": 1e-9})
    args = ["--prompt", "and the", "--max-new-tokens", "60"]
    sampled = succeeded(invoke("infer", "generate", tiny_p, *args, "--seed", "4")).stdout
    greedy = succeeded(invoke("infer", "generate", tiny_model, *args, "--temperature", "0"))
    assert sampled == greedy.stdout


def test_zero_threads_is_refused(tiny_model: Path, monkeypatch) -> None:
    error_line(invoke("infer", "generate", tiny_model, "--threads", "0"), "--threads", "at least 1")
    monkeypatch.setenv("RNNEDGE_THREADS", "0")
    error_line(invoke("infer", "generate", tiny_model), "RNNEDGE_THREADS")


def test_resume_takes_untyped_options_from_the_run(tmp_path: Path) -> None:
    # `train add` defaults to --hidden 16; a run trained with --hidden 24 resumes without the
    # flag (the CLI tells the library which options were typed).
    run = tmp_path / "add"
    base = ["train", "add", "--out", run, "--train-examples", "64", "--valid-examples", "16"]
    succeeded(invoke(*base, "--hidden", "24", "--steps", "4", "--eval-every", "2"))
    succeeded(invoke(*base, "--steps", "6", "--eval-every", "2", "--resume"))
    error_line(invoke(*base, "--hidden", "16", "--steps", "8", "--resume"), "--hidden")
