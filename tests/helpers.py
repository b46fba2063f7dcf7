"""Helpers shared by the CLI and data tests: invoking the app, checking clean errors, IDX files."""

from __future__ import annotations

import gzip
import importlib
import re
import socket
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from rnnedge.cli import app

ANSI = re.compile(r"\x1b\[[0-9;]*m")
EXPORT = Path(__file__).resolve().parents[1] / "export"


@contextmanager
def export_script(name: str) -> Iterator[ModuleType]:
    """export/<name>.py imported, export/ on sys.path while the block runs (the recipe
    scripts import each other and are not a package)."""
    sys.path.insert(0, str(EXPORT))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(EXPORT))


def require_loopback_ray(part: str) -> None:
    """Skip the calling Ray test module unless Ray (`part` of the `serve` extra) is installed
    and the tests run in a loopback-only network namespace (`make test-ray`), where Ray cannot
    reach another address."""
    pytest.importorskip("ray", reason=f"needs the `serve` extra ({part})")
    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        pytest.skip(
            "Ray tests run only in a loopback-only network namespace: `make test-ray`",
            allow_module_level=True,
        )


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def error_line(result: Result, *needles: str) -> str:
    """Assert a clean failure and return its one `error:` line (which must name `needles`)."""
    stderr = ANSI.sub("", result.stderr)
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    line = lines[0]
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def succeeded(result: Result) -> Result:
    assert result.exit_code == 0, ANSI.sub("", result.output)
    return result


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """An IDX file of uint8 `array`: magic 0 0 0x08 ndim, big-endian dims, bytes."""
    array = np.asarray(array, dtype=np.uint8)
    raw = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path
