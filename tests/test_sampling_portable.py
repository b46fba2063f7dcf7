"""Portable seeded sampling: SplitMix64 and a token procedure other languages reproduce."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnedge.runtime.prng import PortableRng
from rnnedge.runtime.sampling import (
    EXP_COEFFICIENTS,
    LN2_HI,
    LN2_LO,
    LOG2E,
    SamplingConfig,
    exp64,
    sample_token,
    sample_tokens,
)

M64 = 2**64


def splitmix64_outputs(seed: int, count: int) -> list[int]:
    """SplitMix64 written out again with plain ints, as a reader of the spec would."""
    state, out = seed % M64, []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) % M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % M64
        out.append(z ^ (z >> 31))
    return out


def test_splitmix64_matches_the_published_reference_sequence():
    # The first outputs of the reference splitmix64.c for seed 1234567.
    rng = PortableRng(1234567)
    assert [rng.next_u64() for _ in range(3)] == [
        6457827717110365317,
        3203168211198807973,
        9817491932198370423,
    ]


@pytest.mark.parametrize("seed", [0, 1, 42, 2**63 + 5, -1])
def test_splitmix64_matches_an_independent_implementation(seed):
    rng = PortableRng(seed)
    assert [rng.next_u64() for _ in range(50)] == splitmix64_outputs(seed, 50)


def test_uniform_is_the_top_53_bits():
    rng, words = PortableRng(7), splitmix64_outputs(7, 1000)
    draws = [rng.random() for _ in range(1000)]
    assert draws == [(w >> 11) / 2**53 for w in words]
    assert all(0.0 <= u < 1.0 for u in draws)
    assert 0.45 < sum(draws) / len(draws) < 0.55


def test_unseeded_generators_differ():
    assert PortableRng(None).random() != PortableRng(None).random()


def test_exp64_constants_are_the_documented_doubles():
    assert LOG2E.hex() == "0x1.71547652b82fep+0"
    assert LN2_HI.hex() == "0x1.62e42fee00000p-1"
    assert LN2_LO.hex() == "0x1.a39ef35793c76p-33"
    assert EXP_COEFFICIENTS[-1] == 1.0 and EXP_COEFFICIENTS[0] == 1 / 479001600


def test_exp64_is_close_to_exp_and_zero_far_below():
    x = -np.linspace(0, 708, 100_001)
    ulps = np.abs(exp64(x) - np.exp(x)) / np.spacing(np.exp(x))
    assert ulps.max() <= 3
    assert exp64(np.array([0.0]))[0] == 1.0
    assert exp64(np.array([-708.5, -np.inf])).tolist() == [0.0, 0.0]


def exp64_scalar(x: float) -> float:
    """The exponential's spec step by step on Python floats (another reader's version)."""
    if x < -708:
        return 0.0
    k = math.floor(x * LOG2E + 0.5)
    r = (x - k * LN2_HI) - k * LN2_LO
    p = 1 / math.factorial(12)
    for n in range(11, 0, -1):
        p = p * r + 1 / math.factorial(n)
    return math.ldexp(p * r + 1.0, k)


def test_exp64_equals_the_spec_evaluated_on_scalars():
    x = -np.random.default_rng(3).random(2000) * 710
    assert exp64(x).tolist() == [exp64_scalar(v) for v in x.tolist()]


def test_same_seed_same_tokens_and_different_seeds_differ():
    logits = np.random.default_rng(0).normal(0, 2, (64,)).astype(np.float32)
    config = SamplingConfig(temperature=0.9, top_k=30, top_p=0.95)

    def draw(seed: int) -> list[int]:
        rng = PortableRng(seed)
        return [sample_token(logits, config, rng) for _ in range(200)]

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)


def test_greedy_takes_the_lowest_id_among_tied_maxima_and_draws_nothing():
    rng = PortableRng(1)
    logits = np.array([1.0, 3.0, 2.0, 3.0], dtype=np.float32)
    assert sample_token(logits, SamplingConfig(temperature=0.0), rng) == 1
    assert rng.state == 1  # no uniform drawn


def test_top_k_keeps_every_token_tied_with_the_kth_largest():
    logits = np.array([5.0, 4.0, 4.0, 4.0, 1.0], dtype=np.float32)
    seen = {
        int(sample_tokens(logits[None], [SamplingConfig(top_k=2)], np.array([u]))[0])
        for u in np.linspace(0, 0.999, 400)
    }
    assert seen == {0, 1, 2, 3}


def test_top_p_keeps_the_shortest_heaviest_prefix_ties_by_lower_id():
    probs = np.array([0.1, 0.3, 0.3, 0.2, 0.1])
    logits = np.log(probs).astype(np.float32)
    config = SamplingConfig(temperature=1.0, top_p=0.5)
    seen = {
        int(sample_tokens(logits[None], [config], np.array([u]))[0])
        for u in np.linspace(0, 0.999, 400)
    }
    assert seen == {1, 2}  # 0.3 + 0.3 reaches 0.5; id 1 before id 2 on their tie
    config = SamplingConfig(temperature=1.0, top_p=0.25)
    seen = {
        int(sample_tokens(logits[None], [config], np.array([u]))[0])
        for u in np.linspace(0, 0.999, 400)
    }
    assert seen == {1}  # the tie is broken towards the lower id


def test_draw_is_the_first_id_whose_cumulative_weight_exceeds_u_times_total():
    logits = np.log(np.array([0.25, 0.5, 0.25])).astype(np.float32)
    weights = exp64(logits.astype(np.float64) - logits.max())
    cumulative = np.cumsum(weights)
    for u, expected in [(0.0, 0), (0.2499, 0), (0.2501, 1), (0.7499, 1), (0.7501, 2), (0.9999, 2)]:
        token = sample_tokens(logits[None], [SamplingConfig()], np.array([u]))[0]
        assert token == expected == int(np.argmax(cumulative > u * cumulative[-1]))


def test_sampling_follows_the_distribution():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05])).astype(np.float32)
    rng = PortableRng(11)
    counts = np.bincount(
        [sample_token(logits, SamplingConfig(), rng) for _ in range(4000)], minlength=4
    )
    np.testing.assert_allclose(counts / 4000, [0.5, 0.3, 0.15, 0.05], atol=0.03)


def test_a_row_samples_the_same_alone_and_in_a_batch():
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 3, (24, 40)).astype(np.float32)  # [B, V]
    config = SamplingConfig(temperature=0.7, top_k=12, top_p=0.9)
    uniforms = np.array([PortableRng(row).random() for row in range(len(logits))])
    batched = sample_tokens(logits, [config] * len(logits), uniforms)
    alone = [sample_tokens(logits[r : r + 1], [config], uniforms[r : r + 1])[0] for r in range(24)]
    assert batched.tolist() == alone


@pytest.mark.parametrize("temperature", [-1.0, 1e-6, float("nan")])
def test_temperature_must_be_zero_or_usable(temperature):
    from rnnedge.errors import InputError

    with pytest.raises(InputError, match="--temperature"):
        SamplingConfig(temperature=temperature).check()
