"""Compressors as language-model baselines: held-out bits per character.

A compressor given the training text as context: the held-out part costs
8 × (size(train + heldout) − size(train)) bits, divided by its characters. bz2 and xz come
from Python's standard library; PPMd is 7-Zip's (Debian package p7zip-full, ``7z``).
"""

from __future__ import annotations

import bz2
import lzma
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

PPMD_OPTIONS = "-m0=PPMd:o=8:mem=1g"


def ppmd_size(data: bytes) -> int:
    """Bytes of a 7z PPMd (order 8, 1 GB model memory) archive of `data`."""
    if shutil.which("7z") is None:
        raise RuntimeError("7z is not installed: apt-get install p7zip-full")
    with tempfile.TemporaryDirectory() as tmp:
        source, archive = Path(tmp) / "text", Path(tmp) / "text.7z"
        source.write_bytes(data)
        command = ["7z", "a", "-bd", "-bso0", PPMD_OPTIONS, str(archive), str(source)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return archive.stat().st_size


COMPRESSORS: dict[str, Callable[[bytes], int]] = {
    "bz2": lambda data: len(bz2.compress(data, 9)),
    "xz": lambda data: len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)),
    "ppmd": ppmd_size,
}


def compressor_bpc(train: str, heldout: str, names: tuple[str, ...] = ("ppmd",)) -> dict:
    """Held-out bits/char of each named compressor given `train` as context."""
    head, whole = train.encode("utf-8"), (train + heldout).encode("utf-8")
    return {
        name: 8 * (COMPRESSORS[name](whole) - COMPRESSORS[name](head)) / len(heldout)
        for name in names
    }
