"""Every ```python block of README.md runs as written: a fresh interpreter, an empty
temporary working directory, nothing added. A block that raises (a renamed function, a
changed return type, a file the example assumes) fails the test with its traceback.

A block that reads a file outside the repository (the Fashion-MNIST example reads
Debian's dataset-fashion-mnist) is skipped, saying so, only when that file is missing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# Absolute paths a block reads: quoted strings starting with a slash.
ABSOLUTE_PATH = re.compile(r"""["'](/[^"'\s]+)["']""")


def readme_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_has_python_examples() -> None:
    # Guards the extraction itself: a changed fence style must not make the test vacuous.
    assert len(readme_blocks()) >= 3


@pytest.mark.parametrize("index", range(len(readme_blocks())))
def test_readme_python_block_runs_as_written(index: int, tmp_path: Path) -> None:
    code = readme_blocks()[index]
    missing = [p for p in ABSOLUTE_PATH.findall(code) if not Path(p).exists()]
    if missing:
        pytest.skip(f"README block {index} reads {missing[0]}, which this machine lacks")
    script = tmp_path / f"readme_block_{index}.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("RNNEDGE_MODEL", None)  # the examples name their models or mean the default
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"README block {index} failed:\n{code}\n--- stderr ---\n{result.stderr[-3000:]}"
    )
    assert result.stdout.strip(), f"README block {index} printed nothing"
