"""Atomic writes: the whole file or nothing, with the permissions a plain write would give."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rnnedge.atomic import write_atomic, write_bytes_atomic


def test_written_file_gets_the_umask_mode_not_a_private_one(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "model.onnx", b"weights")
    finally:
        os.umask(previous)
    assert (tmp_path / "model.onnx").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "model.onnx").read_bytes() == b"weights"


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")

    def explode(_: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(target, explode)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
