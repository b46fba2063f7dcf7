"""export/ngram.py: the interpolated Kneser-Ney character model, on texts small enough to
work out by hand."""

from __future__ import annotations

import math
import random

import pytest

from helpers import export_script


@pytest.fixture(scope="module")
def ngram():
    with export_script("ngram") as module:
        yield module


def test_hand_computed_probabilities(ngram) -> None:
    # Text "abab", vocabulary {a, b, c}, discount 0.5 everywhere.
    model = ngram.KneserNey("abab", 2, "abc", discount=0.5)
    # Order 1 on its own uses raw counts a:2, b:2 (4 in all, 2 types):
    #   P(a) = (2 - 0.5) / 4 + 0.5 * 2 / 4 * 1/3 = 0.375 + 1/12
    assert model.prob("", "a", 1) == pytest.approx(0.375 + 1 / 12)
    assert model.prob("", "c", 1) == pytest.approx(1 / 12)
    # Under order 2 the unigram uses continuation counts: a after b, b after a -> 1 each of 2.
    #   P_cont(b) = (1 - 0.5) / 2 + 0.5 * 2 / 2 * 1/3 = 0.25 + 1/6
    #   P(b | a) = (2 - 0.5) / 2 + 0.5 * 1 / 2 * P_cont(b)   ("ab" twice, one type after a)
    p_cont_b = 0.25 + 1 / 6
    assert model.prob("a", "b") == pytest.approx(0.75 + 0.25 * p_cont_b)
    assert model.prob("a", "a") == pytest.approx(0.25 * (0.25 + 1 / 6))
    assert model.prob("a", "c") == pytest.approx(0.25 * (1 / 6))
    # A history never seen hands everything to the lower order.
    assert model.prob("c", "b") == pytest.approx(p_cont_b)


def test_continuation_counts_discount_a_frequent_char_with_one_predecessor(ngram) -> None:
    # 'q' is as frequent as 'e' but always follows 'x': its continuation count is 1.
    text = "xq " * 20 + "ae be ce de fe ge he ie je ke le me ne oe pe re se te ue ve "
    model = ngram.KneserNey(text, 2, set(text))
    assert text.count("q") == text.count("e")
    assert model.prob("z", "q") < model.prob("z", "e") / 5  # 'z' unseen: the unigram decides


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_distribution_sums_to_one(ngram, order: int) -> None:
    rng = random.Random(0)
    text = "".join(rng.choice("aabbbcdd \n") for _ in range(3000))
    vocab = set(text) | set("xyz")  # characters never seen still get probability
    model = ngram.KneserNey(text, 4, vocab)
    for history in ["", "a", "ab", "abb", "zzz", "b\n", "dd d", text[-3:]]:
        total = sum(model.prob(history, char, order) for char in model.vocab)
        assert total == pytest.approx(1.0, abs=1e-12)
        assert min(model.prob(history, char, order) for char in model.vocab) > 0


def test_bits_add_up_the_conditional_probabilities(ngram) -> None:
    model = ngram.KneserNey("abcabcabcab", 3, "abcd")
    expected = -math.log2(model.prob("ab", "c")) - math.log2(model.prob("bc", "d"))
    assert model.bits("xxab", "cd", 3) == pytest.approx(expected)


def test_order_chosen_on_validation_sees_structure(ngram) -> None:
    rng = random.Random(1)
    # Each character is decided by the two before it: order 3 should win over 1 and 2.
    table = {(a, b): rng.choice("abcd") for a in "abcd" for b in "abcd"}
    chars = ["a", "b"]
    for _ in range(4000):
        chars.append(table[chars[-2], chars[-1]] if rng.random() < 0.9 else rng.choice("abcd"))
    text = "".join(chars)
    order, scores = ngram.choose_order(text[:3000], text[3000:], "abcd", 5)
    assert order >= 3
    assert scores[3] < scores[2] < scores[1]
