"""Reading user text files with errors a user can act on, and the held-out tail every stage
shares (no torch: used by train, export and eval)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from rnnedge.errors import InputError

T = TypeVar("T", bound=Sequence)


def read_text(path: str | Path, what: str = "text file") -> str:
    """UTF-8 contents of `path`; InputError naming the problem if missing, binary or empty."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {str(path)!r} does not exist; check the path")
    if path.is_dir():
        raise InputError(f"{what} {str(path)!r} is a directory; pass a file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{what} {str(path)!r} is not UTF-8 (bad byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
    if not text:
        raise InputError(f"{what} {str(path)!r} is empty")
    return text


def tail_start(length: int, fraction: float) -> int:
    """Where the held-out last `fraction` of `length` items begins. Training, export and
    `eval --tail` all cut here, so they score exactly the same characters."""
    return round(length * (1.0 - fraction))


def heldout_tail(items: T, fraction: float) -> T:
    """The last `fraction` of `items` (text or ids): the part training never saw."""
    return items[tail_start(len(items), fraction) :]
