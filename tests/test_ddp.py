"""`rnnedge train` under torchrun: 2 CPU processes (gloo, loopback) with DDP end with the
weights and held-out scores of one process on the same global batch; rank 0 alone writes;
a 2-process run resumed from its last.pt (carried state gathered from both ranks) equals an
unbroken one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import train_tiny

pytestmark = pytest.mark.slow
RNNEDGE = Path(sys.executable).parent / "rnnedge"
TINY = ["--hidden", "32", "--layers", "2", "--embed-dim", "16", "--batch-size", "8"]
TINY += ["--seq-len", "32", "--eval-every", "10", "--checkpoint-every", "10", "--threads", "1"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(text: Path, out: Path, *options: str) -> None:
    """`torchrun --nproc-per-node 2 rnnedge train lm …` on loopback, quietly."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--master-addr", "127.0.0.1", "--master-port", str(free_port()), "--no-python"]
    command += [str(RNNEDGE), "train", "lm", "--text", str(text), "--out", str(out), *TINY]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*command, *options], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]


def assert_same_run(one: Path, two: Path) -> None:
    """Same weights (within float summation order) and the same logged held-out scores."""
    first = torch.load(one / "last.pt", weights_only=False)
    second = torch.load(two / "last.pt", weights_only=False)
    assert first["step"] == second["step"]
    for name, weight in first["model"].items():
        torch.testing.assert_close(second["model"][name], weight, rtol=1e-4, atol=1e-5)
    logs = [[json.loads(line) for line in (run / "metrics.jsonl").open()] for run in (one, two)]
    assert [r["step"] for r in logs[1]] == [r["step"] for r in logs[0]]  # one writer, no repeats
    for a, b in zip(*logs, strict=True):
        assert b["valid_bpc"] == pytest.approx(a["valid_bpc"], rel=1e-5)


def test_two_processes_equal_one_on_the_same_global_batch(corpus: Path, tmp_path: Path) -> None:
    one = train_tiny(corpus, tmp_path / "one", steps=20, eval_every=10, checkpoint_every=10).parent
    torchrun(corpus, tmp_path / "two", "--steps", "20", "--seed", "0")
    assert_same_run(one, tmp_path / "two")


def test_resumed_two_process_run_equals_one_unbroken_process(corpus: Path, tmp_path: Path) -> None:
    """Sequential batches carry state across steps: last.pt holds both ranks' rows."""
    one = train_tiny(
        corpus,
        tmp_path / "one",
        steps=20,
        eval_every=10,
        checkpoint_every=10,
        batching="sequential",
    ).parent
    options = ["--seed", "0", "--batching", "sequential"]
    torchrun(corpus, tmp_path / "two", "--steps", "10", *options)
    carried = torch.load(tmp_path / "two" / "last.pt", weights_only=False)["carried_state"]
    assert [tuple(s.shape) for s in carried] == [(2, 8, 32), (2, 8, 32)]  # the global batch
    torchrun(corpus, tmp_path / "two", "--steps", "20", "--resume")
    assert_same_run(one, tmp_path / "two")
