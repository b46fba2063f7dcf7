"""docs/contract.md against the code.

Its check values are the runtime's: an implementer tests against the page, so every number
it prints for that purpose is recomputed here from the runtime (SplitMix64 outputs and
uniforms, exp64 constants and values, the sampling table, the KJV prompt ids, the flat
metadata keys). And a second binding written from the page alone (onnxruntime and the
standard library: protobuf walk, tokenizer, state carrying, sampling, padding) must
reproduce the shipped golden vectors. A change to either side fails here."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
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


# ------------------------------------------------------------------------------------------
# A second binding written from the page alone (onnxruntime + the standard library, nothing
# from rnnedge.runtime), checked against the shipped golden vectors: if it reproduces them,
# the page says enough, and says it right.

MODELS = Path(__file__).resolve().parents[1] / "models"


def varint(data: bytes, offset: int) -> tuple[int, int]:
    """Section 5, step 1: 7 bits a byte, least significant group first."""
    value = shift = 0
    for _ in range(10):
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
    raise ValueError("varint longer than 10 bytes")


def fields(data: bytes, start: int, end: int):
    """Section 5, step 2: (field number, wire type, payload start, payload end)."""
    offset = start
    while offset < end:
        tag, offset = varint(data, offset)
        wire, begin = tag & 7, offset
        if wire == 0:
            _, offset = varint(data, offset)
        elif wire in (1, 5):
            offset += 8 if wire == 1 else 4
        elif wire == 2:
            length, begin = varint(data, offset)
            offset = begin + length
        else:
            raise ValueError(f"wire type {wire}")
        yield tag >> 3, wire, begin, offset


def metadata_props(data: bytes) -> dict[str, str]:
    """Section 5, steps 3-4: field 14 entries, key = field 1, value = field 2."""
    props = {}
    for number, wire, start, end in fields(data, 0, len(data)):
        if number == 14 and wire == 2:
            entry = {n: data[s:e].decode() for n, w, s, e in fields(data, start, end) if w == 2}
            props[entry.get(1, "")] = entry.get(2, "")
    return props


def open_model(name: str):
    """The manifest from the bytes and a session with section 8's settings."""
    data = (MODELS / f"{name}.onnx").read_bytes()
    manifest = json.loads(metadata_props(data)["rnnedge.manifest"])
    assert int(manifest["schema_version"].split(".")[0]) in (0, 1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return manifest, ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def encode(text: str, spec: dict) -> list[int]:
    """Section 6.1: one id per code point, the unknown policy."""
    index = {token: i for i, token in enumerate(spec["vocab"])}
    ids = []
    for ch in text:  # a Python str iterates by code point
        if ch in index:
            ids.append(index[ch])
        elif spec["unknown"] == "replace":
            ids.append(spec["unk_id"])
        elif spec["unknown"] == "error":
            raise ValueError(f"{ch!r} is not in the vocabulary")
    return ids


class SplitMix64:
    """Section 9.2."""

    def __init__(self, seed: int) -> None:
        self.state = seed % 2**64

    def uniform(self) -> float:
        self.state = (self.state + 0x9E3779B97F4A7C15) % 2**64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        return ((z ^ (z >> 31)) >> 11) * 2.0**-53


def page_exp64(x: float) -> float:
    """Section 9.4, in plain Python floats (IEEE-754 doubles)."""
    if not x >= -708:
        return 0.0
    k = math.floor(x * 1.4426950408889634 + 0.5)
    r = (x - k * 0.6931471803691238) - k * 1.9082149292705877e-10
    p = 1 / math.factorial(12)
    for n in range(11, 0, -1):
        p = p * r + 1 / math.factorial(n)
    return math.ldexp(p * r + 1.0, k)


def page_sample(row: list[float], settings: dict, rng: SplitMix64) -> int:
    """Section 9.3, steps 1-7."""
    temperature, top_k, top_p = settings["temperature"], settings["top_k"], settings["top_p"]
    if temperature == 0:
        return max(range(len(row)), key=lambda i: (row[i], -i))
    u = rng.uniform()
    s = [v / temperature for v in row]
    t = sorted(s, reverse=True)[top_k - 1] if 0 < top_k < len(s) else -math.inf
    m = max(s)
    w = [page_exp64(v - m) if v >= t else 0.0 for v in s]
    if top_p < 1:
        total = 0.0
        for weight in w:
            total += weight
        order = sorted(range(len(w)), key=lambda i: (-w[i], i))
        kept, mass = len(order), 0.0
        for j, i in enumerate(order):
            mass += w[i]
            if mass >= top_p * total:
                kept = j + 1
                break
        keep = set(order[:kept])
        w = [weight if i in keep else 0.0 for i, weight in enumerate(w)]
    c, running = [], 0.0
    for weight in w:
        running += weight
        c.append(running)
    return next(i for i, ci in enumerate(c) if ci > u * c[-1])


def test_the_page_alone_reproduces_the_kjv_golden_vectors() -> None:
    golden = json.loads((MODELS / "kjv-char-lstm.golden.json").read_text(encoding="utf-8"))
    manifest, session = open_model("kjv-char-lstm")
    ids = encode(golden["prompt"], manifest["tokenizer"])
    assert ids == golden["prompt_ids"]
    for kind in ("greedy", "sampled"):
        expected = golden[kind]
        state = {
            s["input"]: np.full([1, *s["shape"][1:]], s["initial_value"], np.float32)
            for s in manifest["states"]
        }
        names = ["logits"] + [s["output"] for s in manifest["states"]]
        feed = np.array([ids], dtype=np.int64)  # the prefill: one call
        rng, out_ids = SplitMix64(expected["seed"] or 0), []
        for n in range(expected["max_new_tokens"]):
            logits, *states = session.run(names, {"tokens": feed, **state})
            state = {s["input"]: v for s, v in zip(manifest["states"], states, strict=True)}
            row = [float(v) for v in logits[0, -1]]
            if n == 0:
                assert np.abs(np.subtract(row, golden["logits"])).max() <= 1e-4
            out_ids.append(page_sample(row, expected["sampling"], rng))
            feed = np.array([[out_ids[-1]]], dtype=np.int64)
        assert out_ids == expected["ids"], kind
        assert "".join(manifest["tokenizer"]["vocab"][i] for i in out_ids) == expected["text"]


def softmax64(logits: np.ndarray) -> np.ndarray:
    """Section 7.1."""
    shifted = np.exp(logits.astype(np.float64) - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def test_the_page_alone_reproduces_the_langid_golden_vectors() -> None:
    """Streams one character per call (section 10) and a right-padded batch read at each
    row's last real step (section 7.3) against the golden probabilities."""
    golden = json.loads((MODELS / "fortune-langid.golden.json").read_text(encoding="utf-8"))
    manifest, session = open_model("fortune-langid")
    specs, tokenizer = manifest["states"], manifest["tokenizer"]
    names = ["logits"] + [s["output"] for s in specs]
    max_len = manifest["preprocessing"]["max_len"]
    encoded = [encode(entry["input"], tokenizer)[:max_len] for entry in golden["inputs"]]
    for entry, ids in zip(golden["inputs"], encoded, strict=True):
        assert ids == entry["ids"]
        state = {s["input"]: np.zeros([1, *s["shape"][1:]], np.float32) for s in specs}
        for t, token in enumerate(ids):
            logits, *states = session.run(names, {"tokens": np.array([[token]]), **state})
            state = {s["input"]: v for s, v in zip(specs, states, strict=True)}
            assert np.abs(softmax64(logits[0, -1]) - entry["steps"][t]).max() <= 1e-5
    width = max(len(ids) for ids in encoded)
    batch = np.full((len(encoded), width), tokenizer["pad_id"], dtype=np.int64)
    for row, ids in enumerate(encoded):
        batch[row, : len(ids)] = ids
    state = {s["input"]: np.zeros([len(encoded), *s["shape"][1:]], np.float32) for s in specs}
    logits = session.run(["logits"], {"tokens": batch, **state})[0]  # [B, T, C]
    for row, (entry, ids) in enumerate(zip(golden["inputs"], encoded, strict=True)):
        probs = softmax64(logits[row, len(ids) - 1])
        assert np.abs(probs - entry["probabilities"]).max() <= 1e-5
        assert golden["labels"][int(probs.argmax())] == entry["label"]
