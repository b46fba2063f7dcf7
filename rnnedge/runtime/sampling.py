"""Choosing the next token from logits in numpy: temperature, top-k, top-p, seeded RNG."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnedge.errors import InputError


@dataclass(frozen=True)
class SamplingConfig:
    """temperature 0 means greedy (argmax); top_k 0 and top_p 1 mean no truncation."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def check(self) -> None:
        if self.temperature < 0:
            raise InputError(f"--temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise InputError(f"--top-k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise InputError(f"--top-p must be in (0, 1], got {self.top_p}")


def sample_token(logits: np.ndarray, config: SamplingConfig, rng: np.random.Generator) -> int:
    """One token id from `logits` `[vocab]` (one row of `sample_tokens`)."""
    uniform = rng.random() if config.temperature > 0 else 0.0
    return int(sample_tokens(logits[None], [config], np.array([uniform]))[0])


def sample_tokens(
    logits: np.ndarray, configs: list[SamplingConfig], uniforms: np.ndarray
) -> np.ndarray:
    """Token ids [B] from logits [B, V], each row with its own settings and uniform draw.

    Rows sharing settings are sampled in one set of array operations, so many streams cost
    a few numpy calls per step instead of a few per stream. Every operation works row by
    row (elementwise, or reductions along the vocabulary), so a row's token is the same
    whether it is sampled alone or in a batch.
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
    """Token ids [G] for rows [G, V] that share `config`; `uniforms` [G] in [0, 1).

    Works in place on one float64 copy: at a few dozen rows the cost is the number of
    numpy calls, not their arithmetic.
    """
    if config.temperature == 0.0:
        return logits.argmax(axis=-1)
    scaled = logits.astype(np.float64)  # [G, V], our copy
    scaled /= config.temperature
    vocab = scaled.shape[-1]
    if 0 < config.top_k < vocab:
        kth = np.partition(scaled, -config.top_k, axis=-1)[:, -config.top_k]  # k-th largest
        scaled[scaled < kth[:, None]] = -np.inf
    scaled -= scaled.max(axis=-1, keepdims=True)
    weights = np.exp(scaled, out=scaled)  # unnormalised: the draw scales by the total
    if config.top_p < 1.0:
        weights = nucleus(weights / weights.sum(axis=-1, keepdims=True), config.top_p)
    # Inverse-CDF draw: one uniform per token keeps a seed's stream independent of top-k/p.
    cumulative = np.cumsum(weights, axis=-1)  # [G, V]
    chosen = (cumulative <= uniforms[:, None] * cumulative[:, -1:]).sum(axis=-1)
    return np.minimum(chosen, vocab - 1)


def nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """Per row of `probs` [..., V]: keep the smallest set of most likely tokens whose mass
    reaches `top_p`, renormalised."""
    order = np.argsort(-probs, axis=-1, kind="stable")  # most likely first
    mass = np.cumsum(np.take_along_axis(probs, order, axis=-1), axis=-1)
    kept_sorted = np.arange(probs.shape[-1]) <= (mass < top_p).sum(axis=-1, keepdims=True)
    keep = np.zeros(probs.shape, dtype=bool)
    np.put_along_axis(keep, order, kept_sorted, axis=-1)
    kept = np.where(keep, probs, 0.0)
    return kept / kept.sum(axis=-1, keepdims=True)
