"""The whole path through the CLI in seconds: train → export (int8) → inspect → generate → eval."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rnnedge.cli import app


def test_train_export_generate_eval(corpus, tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    trained = runner.invoke(
        app,
        [
            "train",
            "lm",
            "--text",
            str(corpus),
            "--out",
            str(run),
            "--cell",
            "gru",
            "--hidden",
            "24",
            "--layers",
            "1",
            "--batch-size",
            "8",
            "--seq-len",
            "32",
            "--steps",
            "20",
            "--eval-every",
            "10",
            "--checkpoint-every",
            "10",
            "--threads",
            "1",
            "--batching",
            "sequential",
        ],
    )
    assert trained.exit_code == 0, trained.output
    assert (run / "best.pt").exists() and (run / "last.pt").exists()

    model = tmp_path / "m.onnx"
    exported = runner.invoke(
        app,
        [
            "export",
            str(run / "last.pt"),
            "-o",
            str(model),
            "--quantize",
            "int8",
            "--heldout",
            str(corpus),
            "--json",
        ],
    )
    assert exported.exit_code == 0, exported.output
    report = json.loads(exported.stdout)["validation"]
    assert report["fp32"]["parity"]["passed"] and report["int8"]["rollout"]["passed"]

    inspected = json.loads(runner.invoke(app, ["inspect", str(model), "--json"]).stdout)
    assert inspected["manifest"]["architecture"]["cell"] == "gru"
    assert inspected["manifest"]["states"][0]["input"] == "state_in.h"

    generated = runner.invoke(
        app,
        [
            "infer",
            "generate",
            str(model),
            "--prompt",
            "and the",
            "--max-new-tokens",
            "30",
            "--seed",
            "0",
        ],
    )
    assert generated.exit_code == 0 and generated.stdout.startswith("and the")
    assert len(generated.stdout.rstrip("\n")) == len("and the") + 30

    scored = json.loads(
        runner.invoke(
            app, ["eval", str(model), "--text", str(corpus), "--tail", "0.1", "--json"]
        ).stdout
    )
    assert abs(scored["bpc"] - report["quality"]["bpc_int8"]) < 1e-6
