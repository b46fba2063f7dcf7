"""Choosing the next token from logits: a procedure any language reproduces bit for bit.

Every step is IEEE-754 float64 arithmetic (+, -, *, /, comparisons, floor) in a fixed
order, with no library function whose result may differ between platforms, so the same
logits and uniform draw give the same token in Python, JavaScript or C (compiled without
fused multiply-add contraction). For one row of float32 logits ``l[0..V-1]``:

1. greedy (temperature 0): the id of the largest logit, the lowest id on ties; no uniform
   is drawn.
2. ``s[i] = float64(l[i]) / temperature``.
3. top-k (0 < k < V): ``t`` = the k-th largest of ``s`` counting repeats (sort descending,
   take index k-1); tokens with ``s[i] < t`` are dropped (so ties at ``t`` are all kept).
4. ``w[i] = exp64(s[i] - m)`` for kept tokens, ``m`` the largest ``s``; 0 for dropped ones.
   ``exp64`` is the polynomial exponential below, not the platform's ``exp``.
5. top-p (p < 1): order kept tokens by ``w`` descending, lower id first on ties; add their
   weights in that order; keep the shortest prefix whose running sum is ``>= p * total``
   (``total`` = the weights added in id order; all tokens if no prefix reaches it).
6. draw: ``c[i]`` = running sum of the kept weights in id order; the token is the first id
   with ``c[i] > u * c[V-1]``, ``u`` the stream's uniform in [0, 1). (u < 1 makes the
   product smaller than ``c[V-1]``, and a dropped token never passes first, so the result
   is a kept token.)

``exp64(x)`` for ``x <= 0``: 0 if ``x < -708``; otherwise ``k = floor(x * LOG2E + 0.5)``,
``r = (x - k * LN2_HI) - k * LN2_LO``, ``p = 1 + r(1/1! + r(1/2! + … + r(1/12!)))`` (Horner,
innermost first, each ``1/n!`` the float64 nearest it) and ``exp64(x) = p * 2**k``
(exact: the result stays normal). Within 3 ulp of exp over [-708, 0].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rnnedge.errors import InputError

LOG2E = 1.4426950408889634  # float64 nearest 1/ln 2 (0x3FF71547652B82FE)
LN2_HI = 0.6931471803691238  # ln 2, top 32 bits (0x3FE62E42FEE00000): k * LN2_HI is exact
LN2_LO = 1.9082149292705877e-10  # ln 2 - LN2_HI (0x3DEA39EF35793C76)
MIN_TEMPERATURE = 1e-4
EXP_FLOOR = -708.0  # below it the weight is 0: keeps 2**k a normal float64
# 1/n! for n = 12 … 1; Python's int / int division is correctly rounded.
EXP_COEFFICIENTS = tuple(1 / math.factorial(n) for n in range(12, 0, -1))


class UniformSource(Protocol):
    def random(self) -> float: ...


@dataclass(frozen=True)
class SamplingConfig:
    """temperature 0 means greedy (argmax); top_k 0 and top_p 1 mean no truncation."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def check(self) -> None:
        # Below MIN_TEMPERATURE, logits / temperature can overflow to inf (and the text is
        # greedy's anyway); NaN fails this comparison too.
        if not (self.temperature == 0.0 or self.temperature >= MIN_TEMPERATURE):
            raise InputError(
                f"--temperature must be 0 (greedy) or at least {MIN_TEMPERATURE}, "
                f"got {self.temperature}"
            )
        if self.top_k < 0:
            raise InputError(f"--top-k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise InputError(f"--top-p must be in (0, 1], got {self.top_p}")


def exp64(x: np.ndarray) -> np.ndarray:
    """The specified exponential of `x` (float64, all <= 0, -inf allowed), elementwise.

    Platform exp functions are faithful but not identical (glibc, V8's fdlibm and numpy's
    SIMD code can differ in the last bit), and one bit can move a draw; this one uses only
    arithmetic IEEE-754 defines exactly.
    """
    live = x >= EXP_FLOOR
    x = np.where(live, x, 0.0)  # dropped and negligible tokens: computed on 0, zeroed below
    k = np.floor(x * LOG2E + 0.5)
    r = (x - k * LN2_HI) - k * LN2_LO  # |r| <= ln2 / 2
    p = np.full_like(r, EXP_COEFFICIENTS[0])
    for coefficient in EXP_COEFFICIENTS[1:]:
        p *= r
        p += coefficient
    p *= r
    p += 1.0
    return np.where(live, np.ldexp(p, k.astype(np.int32)), 0.0)


def sample_token(logits: np.ndarray, config: SamplingConfig, rng: UniformSource) -> int:
    """One token id from `logits` `[vocab]` (one row of `sample_tokens`)."""
    uniform = rng.random() if config.temperature > 0 else 0.0
    return int(sample_tokens(logits[None], [config], np.array([uniform]))[0])


def sample_tokens(
    logits: np.ndarray, configs: list[SamplingConfig], uniforms: np.ndarray
) -> np.ndarray:
    """Token ids [B] from logits [B, V], each row with its own settings and uniform draw.

    Rows sharing settings are sampled in one set of array operations, so many streams cost
    a few dozen numpy calls per step instead of that many per stream. Every operation works
    row by row (elementwise, or sequential scans along the vocabulary), so a row's token is
    the same whether it is sampled alone or in a batch.
    """
    if all(config is configs[0] for config in configs):  # the usual case: one setting
        return sample_group(logits, configs[0], uniforms)
    tokens = np.empty(len(configs), dtype=np.int64)
    groups: dict[int, list[int]] = {}  # by object: hashing a dataclass per row costs more
    for row, config in enumerate(configs):
        groups.setdefault(id(config), []).append(row)
    for rows in groups.values():
        tokens[rows] = sample_group(logits[rows], configs[rows[0]], uniforms[rows])
    return tokens


def sample_group(logits: np.ndarray, config: SamplingConfig, uniforms: np.ndarray) -> np.ndarray:
    """Token ids [G] for rows [G, V] that share `config`; `uniforms` [G] in [0, 1)."""
    if config.temperature == 0.0:
        return logits.argmax(axis=-1)  # numpy's argmax returns the first (lowest) id on ties
    scaled = logits.astype(np.float64) / config.temperature  # [G, V]
    vocab = scaled.shape[-1]
    if 0 < config.top_k < vocab:
        kth = np.partition(scaled, vocab - config.top_k, axis=-1)[:, vocab - config.top_k]
        scaled[scaled < kth[:, None]] = -np.inf  # ties with the k-th largest stay
    weights = exp64(scaled - scaled.max(axis=-1, keepdims=True))
    if config.top_p < 1.0:
        weights = nucleus(weights, config.top_p)
    # Inverse-CDF draw: one uniform per token keeps a seed's stream independent of top-k/p.
    # np.cumsum adds strictly left to right (np.sum would add pairwise, in another order).
    cumulative = np.cumsum(weights, axis=-1)  # [G, V]
    return (cumulative <= uniforms[:, None] * cumulative[:, -1:]).sum(axis=-1)


def nucleus(weights: np.ndarray, top_p: float) -> np.ndarray:
    """Per row of `weights` [..., V]: zero all but the shortest run of heaviest tokens whose
    weight reaches `top_p` of the row's total (no normalisation: the draw scales by it)."""
    total = np.cumsum(weights, axis=-1)[..., -1:]  # id order, as the draw adds them
    order = np.argsort(-weights, axis=-1, kind="stable")  # heaviest first, lower id on ties
    mass = np.cumsum(np.take_along_axis(weights, order, axis=-1), axis=-1)
    kept_sorted = np.arange(weights.shape[-1]) <= (mass < top_p * total).sum(axis=-1, keepdims=True)
    keep = np.zeros(weights.shape, dtype=bool)
    np.put_along_axis(keep, order, kept_sorted, axis=-1)
    return np.where(keep, weights, 0.0)
