"""A portable seeded random number generator: SplitMix64, as any language can implement it.

numpy's generators are not reproduced outside numpy, so a seeded generation would give
different text in Node.js or a browser. SplitMix64 (Steele, Lea and Flood, 2014; the
seeding generator of xoshiro) is six 64-bit integer operations per draw:

    state = (state + 0x9E3779B97F4A7C15) mod 2**64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) mod 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) mod 2**64
    return z ^ (z >> 31)

A seed is taken modulo 2**64 (so -1 is 0xFFFFFFFFFFFFFFFF) and is the initial state. A
uniform draw in [0, 1) is the top 53 bits of the next output times 2**-53: exact in
float64, so every language gets the same double.
"""

from __future__ import annotations

import os

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
UNIT = 2.0**-53


class PortableRng:
    """SplitMix64 with a `random()` like numpy's; `seed` None draws one from os.urandom."""

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        self.state = seed & MASK64

    def next_u64(self) -> int:
        """The next 64-bit output of the sequence."""
        self.state = (self.state + GOLDEN_GAMMA) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * MIX1) & MASK64
        z = ((z ^ (z >> 27)) * MIX2) & MASK64
        return z ^ (z >> 31)

    def random(self) -> float:
        """A uniform float in [0, 1): the output's top 53 bits times 2**-53."""
        return (self.next_u64() >> 11) * UNIT
