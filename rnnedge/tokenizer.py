"""Character vocabularies: text ⇄ int64 ids, with an explicit policy for unknown characters.

Policies (stored in the manifest so every runtime applies the same one):
- ``error``: refuse text with a character outside the vocabulary, naming it and its position;
- ``skip``: drop such characters;
- ``replace``: map them to the vocabulary's unknown token (requires ``unk_token``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from rnnedge.errors import InputError

UNKNOWN_POLICIES = ("error", "skip", "replace")


@dataclass
class CharTokenizer:
    """Maps each character of a fixed vocabulary to its index."""

    vocab: list[str]
    unknown: str = "error"
    unk_token: str | None = None
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(set(self.vocab)) != len(self.vocab):
            raise InputError("vocabulary has duplicate entries: each character must appear once")
        if self.unknown not in UNKNOWN_POLICIES:
            raise InputError(
                f"unknown-character policy {self.unknown!r} is not one of {UNKNOWN_POLICIES}"
            )
        if self.unknown == "replace" and self.unk_token not in self.vocab:
            raise InputError("policy 'replace' needs an unk_token that is in the vocabulary")
        self._index = {ch: i for i, ch in enumerate(self.vocab)}

    @classmethod
    def from_text(cls, text: str, unknown: str = "error") -> CharTokenizer:
        """Vocabulary of every distinct character in `text`, sorted by code point."""
        return cls(sorted(set(text)), unknown=unknown)

    def __len__(self) -> int:
        return len(self.vocab)

    def with_policy(self, unknown: str) -> CharTokenizer:
        """The same vocabulary under another unknown-character policy."""
        return CharTokenizer(self.vocab, unknown=unknown, unk_token=self.unk_token)

    def encode(self, text: str) -> np.ndarray:
        """Ids of `text` as int64 `[len]`, applying the unknown-character policy."""
        index = self._index
        try:
            return np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))
        except KeyError:
            return self._encode_with_unknowns(text)

    def _encode_with_unknowns(self, text: str) -> np.ndarray:
        ids: list[int] = []
        for position, ch in enumerate(text):
            if ch in self._index:
                ids.append(self._index[ch])
            elif self.unknown == "skip":
                continue
            elif self.unknown == "replace":
                ids.append(self._index[self.unk_token])  # type: ignore[index]
            else:
                raise InputError(
                    f"character {ch!r} (U+{ord(ch):04X}) at position {position} is not in the "
                    f"model's {len(self.vocab)}-character vocabulary; remove it or pass "
                    "--unknown skip"
                )
        return np.asarray(ids, dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of a sequence of ids."""
        vocab = self.vocab
        return "".join(vocab[i] for i in ids)

    def to_dict(self) -> dict:
        return {
            "kind": "char",
            "vocab": list(self.vocab),
            "unknown": self.unknown,
            "unk_token": self.unk_token,
            "special_tokens": [],
        }

    @classmethod
    def from_dict(cls, data: dict) -> CharTokenizer:
        if data.get("kind") != "char":
            raise InputError(
                f"tokenizer kind {data.get('kind')!r} is not supported by this rnnedge"
            )
        return cls(
            list(data["vocab"]),
            unknown=data.get("unknown", "error"),
            unk_token=data.get("unk_token"),
        )
