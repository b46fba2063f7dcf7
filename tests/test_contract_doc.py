"""docs/contract.md's check values are the code's: an implementer in another language tests
against the page, so every number it prints for that purpose is recomputed here from the
runtime (SplitMix64 outputs and uniforms, exp64 constants and values, the sampling table,
the KJV prompt ids, the flat metadata keys). A change to either side fails here."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rnnedge.contract import Manifest
from rnnedge.runtime import load
from rnnedge.runtime.prng import PortableRng
from rnnedge.runtime.sampling import (
    EXP_COEFFICIENTS,
    LN2_HI,
    LN2_LO,
    LOG2E,
    SamplingConfig,
    exp64,
    sample_token,
)

DOC = (Path(__file__).resolve().parents[1] / "docs" / "contract.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of the section whose heading starts with `title`, up to the next heading."""
    start = DOC.index(title)
    end = DOC.find("\n#", start + len(title))
    return DOC[start : end if end > 0 else None]


def test_splitmix64_table_matches_the_generator() -> None:
    rows = re.findall(r"^\| (\d+) \| (`0x[^|]+) \| ([\d., ]+) \|$", section("### 9.2"), re.M)
    assert len(rows) == 2
    for seed, outputs, uniforms in rows:
        rng = PortableRng(int(seed))
        assert [int(o.strip(" `"), 16) for o in outputs.split(",")] == [
            rng.next_u64() for _ in range(3)
        ]
        rng = PortableRng(int(seed))
        assert [float(u) for u in uniforms.split(",")] == [rng.random() for _ in range(3)]


def test_exp64_constants_and_values_match_the_code() -> None:
    text = section("### 9.4")
    for name, value in (("LOG2E", LOG2E), ("LN2_HI", LN2_HI), ("LN2_LO", LN2_LO)):
        decimal, bits = re.search(rf"^\| {name} \| ([^ ]+) \| `0x([0-9A-F]+)`", text, re.M).groups()
        assert float(decimal) == value
        assert int(bits, 16) == int(np.float64(value).view(np.uint64))
    coefficients = dict(re.findall(r"C\[(\d+)\] = ([\d.e-]+)", text))
    assert {int(n): float(c) for n, c in coefficients.items()} == dict(
        zip(range(12, 0, -1), EXP_COEFFICIENTS, strict=True)
    )
    values = re.findall(r"`exp64\((-?[\d.]+)\) =\s+([\d.e+-]+)`", text)
    assert len(values) >= 4
    for x, expected in values:
        assert float(exp64(np.array([float(x)]))[0]) == float(expected)
    assert "exp64(0) = 1" in text and exp64(np.array([0.0]))[0] == 1.0


SETTINGS = re.compile(r"temperature ([\d.]+)(?:, top-k (\d+))?(?:, top-p ([\d.]+))?")


def test_sampling_check_table_matches_sample_token() -> None:
    text = section("### 9.5")
    logits = np.array(
        [float(v) for v in re.search(r"Logits `\[([^\]]+)\]`", text).group(1).split(",")],
        dtype=np.float32,
    )
    rows = re.findall(r"^\| (temperature [^|]+) \| ([\d ]+)", text, re.M)
    assert len(rows) == 5
    for settings, ids in rows:
        temperature, top_k, top_p = SETTINGS.match(settings).groups()
        config = SamplingConfig(float(temperature), int(top_k or 0), float(top_p or 1.0))
        rng = PortableRng(1)
        assert [sample_token(logits, config, rng) for _ in range(8)] == [
            int(i) for i in ids.split()
        ], settings


def test_kjv_prompt_ids_match_the_shipped_tokenizer() -> None:
    prompt, ids = re.search(r'\(KJV\): `"([^"]+)"` → `\[([\d, ]+)\]`', DOC).groups()
    assert load("kjv").tokenizer.encode(prompt).tolist() == [int(i) for i in ids.split(",")]


def test_flat_metadata_keys_are_the_ones_written() -> None:
    listed = set(re.findall(r"`(rnnedge\.[a-z_]+)`", section("**Flat entries.**")))
    listed.discard("rnnedge.manifest")
    manifest = Manifest("language-model", {}, {}, [], [], [])
    assert listed == set(manifest.flat_metadata())


@pytest.mark.parametrize("name", ["kjv-char-lstm", "fortune-langid", "fashion-mnist-rows"])
def test_state_tables_name_the_shipped_states(name: str) -> None:
    """Every state key of a shipped model appears in the state section's name list."""
    keys = {s.input.split(".", 1)[1] for s in load(name).manifest.states}
    names = section("## 3. State").split("\n- ", 2)[1]
    assert all(f"`{key}`" in names for key in keys)
