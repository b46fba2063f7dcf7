"""A character n-gram language model with interpolated Kneser-Ney smoothing (pure Python).

The classical baseline an RNN language model has to beat. For a model of order n and a
history h of n-1 characters:

    P_n(w | h) = max(c(hw) - D, 0) / c(h·) + D * N1+(h·) / c(h·) * P_{n-1}(w | h')

where h' is h without its first character, c(h·) the count of h followed by anything and
N1+(h·) how many distinct characters follow h. Lower orders k < n use continuation counts
instead of raw counts (N1+(·h'w): how many distinct characters precede h'w), the unigram
is interpolated with the uniform distribution over the vocabulary, and a history never seen
backs off entirely to the next lower order. D per order is n1 / (n1 + 2 n2) from that
order's count-of-counts. Every distribution sums to one over the vocabulary.

One model built with ``max_order`` scores every order 1..max_order, so the order can be
chosen on validation text without refitting.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

Stats = dict[str, tuple[int, int]]  # history -> (total count, distinct followers)


def ngram_counts(text: str, k: int) -> Counter[str]:
    """Raw counts of every k-character substring of `text`."""
    return Counter(text[i : i + k] for i in range(len(text) - k + 1))


def continuation_counts(higher: Counter[str]) -> Counter[str]:
    """N1+(·g) for each (k-1)-gram g: the distinct characters seen before it."""
    return Counter(gram[1:] for gram in higher)


def history_stats(table: Counter[str]) -> Stats:
    """For each history (all but the last character): total count and distinct followers."""
    stats: dict[str, list[int]] = {}
    for gram, count in table.items():
        entry = stats.setdefault(gram[:-1], [0, 0])
        entry[0] += count
        entry[1] += 1
    return {h: (total, types) for h, (total, types) in stats.items()}


def estimate_discount(table: Counter[str]) -> float:
    """D = n1 / (n1 + 2 n2), kept inside (0, 1) so every seen count keeps some mass."""
    of_counts = Counter(table.values())
    n1, n2 = of_counts.get(1, 0), of_counts.get(2, 0)
    if n1 + 2 * n2 == 0:
        return 0.5
    return min(max(n1 / (n1 + 2 * n2), 0.05), 0.95)


class KneserNey:
    """Interpolated Kneser-Ney character model of orders 1..max_order over `vocab`."""

    def __init__(
        self,
        text: str,
        max_order: int,
        vocab: Iterable[str],
        discount: float | None = None,
    ) -> None:
        self.max_order = max_order
        self.vocab = sorted(set(vocab) | set(text))
        raw = [Counter()] + [ngram_counts(text, k) for k in range(1, max_order + 1)]
        cont = [Counter()] + [continuation_counts(raw[k + 1]) for k in range(1, max_order)]
        # tables[k] = (raw, continuation) counts of k-grams, their history stats and D.
        self.raw = [(t, history_stats(t), discount or estimate_discount(t)) for t in raw[1:]]
        self.cont = [(t, history_stats(t), discount or estimate_discount(t)) for t in cont[1:]]

    def prob(self, history: str, char: str, order: int | None = None) -> float:
        """P(char | the last order-1 characters of history)."""
        order = order or self.max_order
        if not 1 <= order <= self.max_order:
            raise ValueError(f"order must be in 1..{self.max_order}, got {order}")
        p = 1.0 / len(self.vocab)
        for k in range(1, order + 1):
            if k > len(history) + 1:
                break  # the history is shorter than this order needs
            table, stats, discount = self.raw[k - 1] if k == order else self.cont[k - 1]
            context = history[len(history) - k + 1 :] if k > 1 else ""
            seen = stats.get(context)
            if seen is None:
                continue  # unseen history: all the mass goes to the lower order
            total, types = seen
            count = table.get(context + char, 0)
            p = max(count - discount, 0.0) / total + discount * types / total * p
        return p

    def bits(self, context: str, text: str, order: int | None = None) -> float:
        """Total -log2 P of `text`, each character given what precedes it (after `context`)."""
        order = order or self.max_order
        stream = context[-(order - 1) :] if order > 1 else ""
        total = 0.0
        for char in text:
            total -= math.log2(self.prob(stream, char, order))
            stream = (stream + char)[-(order - 1) :] if order > 1 else ""
        return total


def choose_order(
    train: str, valid: str, vocab: Iterable[str], max_order: int
) -> tuple[int, dict[int, float]]:
    """(best order, bits/char of each order) on `valid`, fitted on `train`."""
    model = KneserNey(train, max_order, vocab)
    scores = {n: model.bits(train, valid, n) / len(valid) for n in range(1, max_order + 1)}
    return min(scores, key=scores.__getitem__), scores
