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
# Character classifiers pad batches with this character (id 0 of their vocabulary).
PAD_CHAR = "\x00"


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
        # Sorted code points of the vocabulary and their ids: texts encode with one
        # searchsorted over their code points instead of a dict lookup per character.
        singles = sorted((ord(ch), i) for i, ch in enumerate(self.vocab) if len(ch) == 1)
        self._points = np.array([p for p, _ in singles] or [0], dtype=np.uint32)
        self._ids = np.array([i for _, i in singles] or [-1], dtype=np.int64)

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
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        """Ids of each text (int64 `[len]`), all texts' characters looked up at once."""
        # surrogatepass: one 4-byte unit per code point even for lone surrogates
        points = np.frombuffer(
            "".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32
        )  # [total chars]
        slots = np.minimum(np.searchsorted(self._points, points), self._points.size - 1)
        known = (self._points[slots] == points) & (self._ids[slots] >= 0)
        ends = np.cumsum([len(t) for t in texts]).tolist()
        spans = list(zip([0, *ends[:-1]], ends, strict=True))
        flat = self._ids[slots]
        ids = [flat[start:end] for start, end in spans]  # views; np.split is slower here
        if known.all():
            return ids
        return [
            ids[row] if known[start:end].all() else self._encode_with_unknowns(text)
            for row, (text, (start, end)) in enumerate(zip(texts, spans, strict=True))
        ]

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
        """The manifest's tokenizer spec: enough for any language to encode text exactly."""
        index = self._index
        return {
            "kind": "char",
            "unit": "code-point",  # one token per Unicode code point (not UTF-16 units)
            "normalization": "none",  # text is not NFC/NFKC-normalised or case-folded
            "vocab": list(self.vocab),
            "unknown": self.unknown,
            "unk_token": self.unk_token,
            "unk_id": index.get(self.unk_token) if self.unk_token is not None else None,
            "pad_id": index.get(PAD_CHAR),
            "bos_id": None,
            "eos_id": None,
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


WORD_PATTERN = r"[\w']+|[^\w\s]"
PAD, UNK = "<pad>", "<unk>"


@dataclass
class WordTokenizer:
    """Lower-cased words and punctuation; id 0 is padding, id 1 stands for unknown words.

    The vocabulary keeps the `max_vocab` most frequent words of the training texts (ties
    broken alphabetically, so it is reproducible); any other word maps to ``<unk>``.
    """

    vocab: list[str]
    lowercase: bool = True
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.vocab[:2] != [PAD, UNK]:
            raise InputError(f"a word vocabulary must start with {PAD} and {UNK}")
        self._index = {word: i for i, word in enumerate(self.vocab)}

    @classmethod
    def from_texts(cls, texts: Iterable[str], max_vocab: int) -> WordTokenizer:
        from collections import Counter

        counts = Counter(word for text in texts for word in cls.split(text))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls([PAD, UNK] + [word for word, _ in ranked[: max(0, max_vocab - 2)]])

    @staticmethod
    def split(text: str, lowercase: bool = True) -> list[str]:
        import re

        return re.findall(WORD_PATTERN, text.lower() if lowercase else text)

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> np.ndarray:
        """Ids of the words of `text` as int64 `[words]`; unknown words become ``<unk>``."""
        index = self._index
        words = self.split(text, self.lowercase)
        return np.fromiter((index.get(w, 1) for w in words), dtype=np.int64, count=len(words))

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        """Ids of each text (the same interface as CharTokenizer.encode_batch)."""
        return [self.encode(text) for text in texts]

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.vocab[i] for i in ids)

    def to_dict(self) -> dict:
        """The manifest's tokenizer spec: enough for any language to encode text exactly."""
        return {
            "kind": "word",
            "unit": "word",
            "normalization": "none",
            "lowercase": self.lowercase,  # Unicode lower-case mapping, code point by code point
            "pattern": WORD_PATTERN,
            # Python `re` in Unicode mode: \w = letters, numbers and '_' (str.isalnum() or
            # '_'), \s = str.isspace(); in JavaScript /[\p{L}\p{N}_']+|[^\p{L}\p{N}_\s]/gu.
            "pattern_flavor": "python-re-unicode",
            "vocab": list(self.vocab),
            "unknown": "replace",
            "unk_token": UNK,
            "unk_id": 1,
            "pad_token": PAD,
            "pad_id": 0,
            "bos_id": None,
            "eos_id": None,
            "special_tokens": [PAD, UNK],
        }


def tokenizer_from_dict(data: dict) -> CharTokenizer | WordTokenizer:
    """The tokenizer a manifest or checkpoint describes."""
    if data.get("kind") == "word":
        return WordTokenizer(list(data["vocab"]), lowercase=data.get("lowercase", True))
    return CharTokenizer.from_dict(data)
