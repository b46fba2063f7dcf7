"""Binary addition streamed from an exported model, for numbers of any length.

The numpy-RNN tutorial adds 8-bit numbers, least significant bit first: at each step the
network reads one bit of each number and writes one bit of the sum. Nothing in that
recurrence knows how many bits there are, so a model trained on 8-bit numbers can be fed
numbers of any width, one bit pair per step, through the runtime's stream; the sum is read
off the per-step answers. (``rnnedge infer classify`` keeps to the width the model was
trained on; this is the library route for longer numbers.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from rnnedge.tasks import encode_addition


def stream_sum_bits(classifier: Any, a: int, b: int) -> Iterator[tuple[int, float]]:
    """(sum bit, its probability) per step, pushing one bit pair at a time (LSB first)."""
    from rnnedge.runtime.classify import softmax

    width = max(a.bit_length(), b.bit_length(), 1)
    features = encode_addition(f"{a}+{b}", width)  # [width + 1, 2]
    stream = classifier.open_stream()
    for row in features:
        probs = softmax(stream.push_encoded(row[None]))[-1]  # [2]
        bit = int(np.argmax(probs))
        yield int(classifier.labels[bit]), float(probs[bit])


def stream_sum(classifier: Any, a: int, b: int) -> int:
    """a + b as the model streams it, whatever the width of a and b."""
    bits = [bit for bit, _ in stream_sum_bits(classifier, a, b)]
    return sum(bit << i for i, bit in enumerate(bits))


def exact_rate(classifier: Any, bits: int, count: int, seed: int) -> float:
    """Fraction of `count` random pairs of `bits`-bit numbers summed exactly."""
    rng = np.random.default_rng(seed)
    pairs = [(int(rng.integers(0, 2**62)), int(rng.integers(0, 2**62))) for _ in range(count)]
    if bits > 62:  # wider than numpy's integers: join 62-bit pieces
        pairs = [(random_int(rng, bits), random_int(rng, bits)) for _ in range(count)]
    pairs = [(a % 2**bits, b % 2**bits) for a, b in pairs]
    return sum(stream_sum(classifier, a, b) == a + b for a, b in pairs) / count


def random_int(rng: np.random.Generator, bits: int) -> int:
    """A uniform random `bits`-bit integer."""
    value = 0
    for _ in range(0, bits, 31):
        value = (value << 31) | int(rng.integers(0, 2**31))
    return value % 2**bits
