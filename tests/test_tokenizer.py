"""CharTokenizer: text ⇄ int64 ids, vocabulary order, the three unknown-character policies,
and the dict form stored in manifests."""

from __future__ import annotations

import numpy as np
import pytest

from rnnedge.errors import InputError
from rnnedge.tokenizer import UNKNOWN_POLICIES, CharTokenizer

CHINESE = "床前明月光，疑是地上霜。举头望明月，低头思故乡。\n分开"


@pytest.mark.parametrize(
    "text",
    ["the lord said unto moses.\n", CHINESE, "mixed 分开 é ñ 😀 text\t\n"],
    ids=["ascii", "chinese", "mixed"],
)
def test_encode_decode_round_trip(text: str) -> None:
    tokenizer = CharTokenizer.from_text(text)
    ids = tokenizer.encode(text)
    assert ids.shape == (len(text),)
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(ids.tolist()) == text


def test_encode_returns_int64_ids_of_vocab_positions() -> None:
    tokenizer = CharTokenizer(["b", "a", "分"])
    ids = tokenizer.encode("a分ba")
    assert ids.dtype == np.int64
    assert ids.tolist() == [1, 2, 0, 1]


@pytest.mark.parametrize("unknown", ["skip", "replace"])
def test_encode_batch_equals_a_dict_lookup_per_character(unknown: str) -> None:
    vocab = ["?", *sorted(set(CHINESE + "the lord 😀\n"))]
    tokenizer = CharTokenizer(vocab, unknown=unknown, unk_token="?")
    index = {ch: i for i, ch in enumerate(vocab)}
    texts = ["the lord", "", CHINESE, "unknown: Ω and 😀", "\ud800 lone surrogate", "😀"]
    for text, ids in zip(texts, tokenizer.encode_batch(texts), strict=True):
        expected = [index.get(ch, None if unknown == "skip" else 0) for ch in text]
        assert ids.dtype == np.int64
        assert ids.tolist() == [i for i in expected if i is not None]


@pytest.mark.parametrize("unknown", UNKNOWN_POLICIES)
def test_encode_empty_text_is_empty_int64(unknown: str) -> None:
    tokenizer = CharTokenizer(["a", "?"], unknown=unknown, unk_token="?")
    ids = tokenizer.encode("")
    assert ids.dtype == np.int64
    assert ids.shape == (0,)


@pytest.mark.parametrize("unknown", ["skip", "replace"])
def test_encode_with_unknowns_is_still_int64(unknown: str) -> None:
    tokenizer = CharTokenizer(["a", "?"], unknown=unknown, unk_token="?")
    assert tokenizer.encode("axa").dtype == np.int64
    assert tokenizer.encode("xyz").dtype == np.int64


def test_from_text_sorts_vocab_by_code_point() -> None:
    tokenizer = CharTokenizer.from_text("开分ba\n a分")
    assert tokenizer.vocab == ["\n", " ", "a", "b", "分", "开"]
    assert tokenizer.vocab == sorted(tokenizer.vocab, key=ord)
    assert len(tokenizer) == 6


def test_from_text_is_independent_of_character_order() -> None:
    assert CharTokenizer.from_text("abc分").vocab == CharTokenizer.from_text("分cba").vocab


def test_from_text_passes_the_policy() -> None:
    assert CharTokenizer.from_text("ab", unknown="skip").unknown == "skip"


def test_default_policy_is_error() -> None:
    assert CharTokenizer(["a"]).unknown == "error"


def test_error_policy_names_character_code_point_and_position() -> None:
    tokenizer = CharTokenizer.from_text("the lord")
    with pytest.raises(InputError) as info:
        tokenizer.encode("the €lord")
    message = str(info.value)
    assert "'€'" in message
    assert "U+20AC" in message
    assert "position 4" in message
    assert "--unknown skip" in message  # says what to do


def test_error_position_counts_characters_not_bytes() -> None:
    tokenizer = CharTokenizer.from_text("分开ab")
    with pytest.raises(InputError) as info:
        tokenizer.encode("分开分开x")
    assert "position 4" in str(info.value)
    assert "U+0078" in str(info.value)


def test_error_names_astral_code_point_in_full() -> None:
    tokenizer = CharTokenizer.from_text("ab")
    with pytest.raises(InputError, match=r"U\+1F600.*position 1"):
        tokenizer.encode("a😀b")


def test_error_reports_first_unknown_character() -> None:
    tokenizer = CharTokenizer.from_text("abc")
    with pytest.raises(InputError, match=r"'x'.*position 1"):
        tokenizer.encode("axyz")


def test_skip_policy_drops_unknown_characters() -> None:
    tokenizer = CharTokenizer.from_text("the lord", unknown="skip")
    ids = tokenizer.encode("€the 分lord€")
    assert tokenizer.decode(ids) == "the lord"


def test_skip_policy_all_unknown_gives_empty() -> None:
    tokenizer = CharTokenizer(["a"], unknown="skip")
    assert tokenizer.encode("xyz").shape == (0,)


def test_replace_policy_maps_unknowns_to_unk_token() -> None:
    tokenizer = CharTokenizer(["?", "a", "b"], unknown="replace", unk_token="?")
    ids = tokenizer.encode("a€b分")
    assert ids.tolist() == [1, 0, 2, 0]
    assert tokenizer.decode(ids) == "a?b?"


@pytest.mark.parametrize("unk_token", [None, "x"])
def test_replace_policy_needs_unk_token_in_vocab(unk_token: str | None) -> None:
    with pytest.raises(InputError, match="unk_token"):
        CharTokenizer(["a", "b"], unknown="replace", unk_token=unk_token)


@pytest.mark.parametrize("policy", ["ignore", "", "Error", "strict"])
def test_invalid_policy_refused(policy: str) -> None:
    with pytest.raises(InputError, match="policy"):
        CharTokenizer(["a"], unknown=policy)


def test_with_policy_rejects_invalid_policy() -> None:
    with pytest.raises(InputError):
        CharTokenizer(["a"]).with_policy("drop")


def test_duplicate_vocab_refused() -> None:
    with pytest.raises(InputError, match="duplicate"):
        CharTokenizer(["a", "b", "a"])


def test_with_policy_keeps_vocab_and_changes_behaviour() -> None:
    strict = CharTokenizer.from_text("ab")
    lenient = strict.with_policy("skip")
    assert lenient.vocab == strict.vocab
    assert lenient.unknown == "skip"
    assert strict.unknown == "error"  # the original is unchanged
    assert lenient.encode("axb").tolist() == [0, 1]
    with pytest.raises(InputError):
        strict.encode("axb")


@pytest.mark.parametrize(
    "tokenizer",
    [
        CharTokenizer.from_text(CHINESE),
        CharTokenizer(["?", "a", "分"], unknown="replace", unk_token="?"),
        CharTokenizer(["\n", " ", "z"], unknown="skip"),
    ],
    ids=["chinese-error", "replace", "skip"],
)
def test_to_dict_from_dict_round_trip(tokenizer: CharTokenizer) -> None:
    data = tokenizer.to_dict()
    assert data["kind"] == "char"
    assert data["vocab"] == tokenizer.vocab
    restored = CharTokenizer.from_dict(data)
    assert restored == tokenizer
    assert restored.unknown == tokenizer.unknown
    assert restored.unk_token == tokenizer.unk_token
    assert restored.encode("".join(tokenizer.vocab)).tolist() == list(range(len(tokenizer)))


def test_to_dict_vocab_is_a_copy() -> None:
    tokenizer = CharTokenizer(["a", "b"])
    tokenizer.to_dict()["vocab"].append("c")
    assert tokenizer.vocab == ["a", "b"]


def test_from_dict_defaults_policy_to_error() -> None:
    tokenizer = CharTokenizer.from_dict({"kind": "char", "vocab": ["a", "b"]})
    assert tokenizer.unknown == "error"
    assert tokenizer.unk_token is None


@pytest.mark.parametrize("kind", ["bpe", None])
def test_from_dict_refuses_other_kinds(kind: str | None) -> None:
    with pytest.raises(InputError, match="not supported"):
        CharTokenizer.from_dict({"kind": kind, "vocab": ["a"]})


def test_from_dict_validates_like_the_constructor() -> None:
    with pytest.raises(InputError, match="duplicate"):
        CharTokenizer.from_dict({"kind": "char", "vocab": ["a", "a"]})
