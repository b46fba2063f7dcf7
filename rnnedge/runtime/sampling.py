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
    """One token id from `logits` `[vocab]`."""
    if config.temperature == 0.0:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / config.temperature  # [V]
    if 0 < config.top_k < scaled.size:
        kth = np.partition(scaled, -config.top_k)[-config.top_k]
        scaled = np.where(scaled >= kth, scaled, -np.inf)
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    if config.top_p < 1.0:
        probs = nucleus(probs, config.top_p)
    # Inverse-CDF draw: one uniform per token keeps a seed's stream independent of top-k/p.
    cumulative = np.cumsum(probs)
    return int(
        min(
            np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"), probs.size - 1
        )
    )


def nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """Keep the smallest set of most likely tokens whose mass reaches `top_p`."""
    order = np.argsort(probs)[::-1]
    mass = np.cumsum(probs[order])
    keep = order[: int(np.searchsorted(mass, top_p)) + 1]
    kept = np.zeros_like(probs)
    kept[keep] = probs[keep]
    return kept / kept.sum()
