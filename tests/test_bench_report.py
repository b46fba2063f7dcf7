"""The benchmark harness on a tiny model: every figure the report prints is measured, and
the report renders (including the CUDA table, from CPU figures standing in for GPU ones)."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TINY = dict(vocab_size=20, cell="lstm", layers=1, hidden=16, embed_dim=8)


@pytest.fixture(scope="module")
def harness():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import report
        import run

        yield run, report
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def tiny_config(harness) -> dict:
    run, _ = harness
    return {"about": "tiny", **run.bench_config("tiny", TINY, steps=20)}


def test_bench_config_measures_every_variant_on_the_same_weights(tiny_config):
    variants = tiny_config["variants"]
    assert list(variants) == ["torch eager", "onnxruntime fp32", "onnxruntime int8"]
    for figures in variants.values():
        assert set(figures["streams"]) == {1, 8, 64, 256}
        assert all(s["tokens_per_s"] > 0 for s in figures["streams"].values())
        assert figures["step_batch1"]["median"] > 0 and figures["prefill"]["tokens_per_s"] > 0
    assert tiny_config["sizes"]["fp16"] < tiny_config["sizes"]["fp32"]
    gains = tiny_config["interleaved"]["second_thread"]
    assert set(gains) == {"fp32", "int8"} and all(g["streams64"]["min"] > 0 for g in gains.values())


def test_batch1_ratios_are_taken_within_rounds(tiny_config):
    interleaved = tiny_config["interleaved"]
    batch1 = interleaved["seconds"]
    rounds_per_variant = {len(s) for s in batch1.values()}
    assert len(batch1) == 6 and rounds_per_variant == {interleaved["rounds"]}
    streams64 = interleaved["streams64_seconds"]
    assert set(streams64) == {name for name in batch1 if name.startswith("onnxruntime")}
    own = interleaved["vs_fp32"]["onnxruntime fp32 (1 thr)"]
    assert own == {"median": 1.0, "min": 1.0, "max": 1.0}
    one, two = batch1["torch eager (1 thr)"], batch1["torch eager (2 thr)"]
    torch_best = [min(a, b) for a, b in zip(one, two, strict=True)]
    int8 = batch1["onnxruntime int8 (1 thr)"]
    per_round = sorted(t / i for t, i in zip(torch_best, int8, strict=True))
    assert interleaved["vs_torch"]["onnxruntime int8 (1 thr)"]["max"] == max(per_round)


def fake_report(run, config: dict) -> dict:
    return {
        "machine": run.machine(),
        "matmul_peak_flops": 1e10,
        "matmul_peak_flops_by_threads": {1: 1e10, 2: 2e10},
        "configs": {"tiny": config},
        "shipped": {
            "path": "models/x.onnx",
            "size_bytes": 1,
            "cold_start": {"median_s": 0.3, "runs": 3, "peak_rss_mb": 90.0},
        },
    }


def test_report_without_cuda_says_why_the_fp16_rows_are_missing(harness, tiny_config, tmp_path):
    run, report = harness
    config = {k: v for k, v in tiny_config.items() if k != "cuda"}
    report.write_markdown(fake_report(run, config), tmp_path / "REPORT.md")
    text = (tmp_path / "REPORT.md").read_text()
    assert "On CUDA: not measured" in text and "fp16" in text
    assert "| onnxruntime int8 (1 thr) |" in text and "Batch-1 step, interleaved" in text
    assert "| int8 |" in text  # the threads table


def test_report_renders_the_cuda_table(harness, tiny_config, tmp_path):
    run, report = harness
    config = copy.deepcopy(tiny_config)
    variants = config["variants"]
    config["cuda"] = {
        "torch eager": variants["torch eager"],
        "onnxruntime fp32": variants["onnxruntime fp32"],
        "onnxruntime fp16": variants["onnxruntime int8"],  # CPU figures standing in
    }
    report.write_markdown(fake_report(run, config), tmp_path / "REPORT.md")
    text = (tmp_path / "REPORT.md").read_text()
    assert "On CUDA (" in text and "| onnxruntime fp16 |" in text


def test_report_renders_the_same_from_its_json(harness, tiny_config, tmp_path):
    run, report = harness
    measured = fake_report(run, tiny_config)
    report.write_markdown(measured, tmp_path / "direct.md")
    reread = report.with_int_keys(json.loads(json.dumps(measured)))
    report.write_markdown(reread, tmp_path / "reread.md")
    assert (tmp_path / "reread.md").read_text() == (tmp_path / "direct.md").read_text()


def test_thread_sweep_renders_one_cell_per_width_and_precision(
    harness, tiny_config, tmp_path, monkeypatch
):
    run, report = harness
    monkeypatch.setattr(run, "SWEEP_HIDDEN", (8, 16))
    sweep = run.thread_sweep(steps=20, rounds=2)
    assert set(sweep["second_thread"]) == {"fp32/8", "fp32/16", "int8/8", "int8/16"}
    rounds_per_variant = {len(s) for s in sweep["seconds"].values()}
    assert rounds_per_variant == {2}
    report.write_markdown(
        {**fake_report(run, tiny_config), "thread_sweep": sweep}, tmp_path / "R.md"
    )
    text = (tmp_path / "R.md").read_text()
    assert "does a second thread pay?" in text and "| hidden 8 | hidden 16 |" in text
