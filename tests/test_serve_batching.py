"""The server's parts without Ray: request checks (one-line 4xx refusals) and the continuous
batcher (concurrent streams equal to generating alone; a client that leaves frees its slot)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from helpers import error_line, invoke
from rnnedge.runtime import load_classifier, load_generator
from rnnedge.serve.batcher import ContinuousBatcher
from rnnedge.serve.requests import (
    Limits,
    RequestError,
    parse_body,
    parse_classify,
    parse_generate,
)

LIMITS = Limits(max_prompt_chars=50, max_new_tokens=100, max_inputs=3, max_streams=4)


@pytest.fixture(scope="module")
def models(tiny_model: Path) -> dict:
    return {"tiny": load_generator(tiny_model), "langid": load_classifier("fortune-langid")}


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"model": "nope"}, 404, "unknown model 'nope'; loaded: tiny, langid"),
        ({"model": "langid"}, 400, "use /v1/classify"),
        ({"prompt": "x" * 51}, 413, "limit is 50"),
        ({"prompt": "the", "temperature": -1}, 400, "temperature must be 0"),
        ({"prompt": "the", "top_p": 0}, 400, "top_p must be in (0, 1]"),
        ({"prompt": "the", "top_k": 1.5}, 400, "top_k must be an integer, got a number"),
        ({"prompt": "the", "max_new_tokens": 101}, 400, "max_new_tokens must be in 0..100"),
        ({"prompt": "the", "max_new_tokens": True}, 400, "got a boolean"),
        ({"prompt": "the", "seed": 2**64}, 400, "seed must fit in 64 bits"),
        ({"prompt": "ZZZ"}, 400, "'Z'"),
        ({"prompt": "the", "unknown": "maybe"}, 400, "unknown must be error or skip"),
        ({"prompt": "the", "stop": [1]}, 400, "stop must be a string"),
        ({"prompt": "the", "temprature": 1}, 400, "unknown field 'temprature'"),
    ],
)
def test_generation_refusals(models: dict, body: dict, status: int, needle: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_generate(body, models, LIMITS)
    assert caught.value.status == status
    assert needle in caught.value.message and "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"inputs": []}, 400, "non-empty list"),
        ({"inputs": ["a", "b", "c", "d"]}, 413, "the limit is 3"),
        ({"inputs": [7]}, 400, "non-empty string"),
        ({"inputs": ["hello"], "top": 99}, 400, "top must be in 1..12"),
        ({"model": "tiny", "inputs": ["x"]}, 400, "use /v1/generate"),
    ],
)
def test_classification_refusals(models: dict, body: dict, status: int, needle: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_classify(body, models, LIMITS)
    assert (caught.value.status, needle in caught.value.message) == (status, True)


@pytest.mark.parametrize("raw", [b"{bad", b"[1, 2]", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000])
def test_malformed_bodies_are_400(raw: bytes) -> None:
    with pytest.raises(RequestError) as caught:
        parse_body(raw)
    assert caught.value.status == 400


def requests_for(models: dict, count: int) -> list:
    """`count` generation requests with different prompts, lengths, samplings and seeds."""
    bodies = [
        {
            "prompt": ["the lord", "and moses", "behold i", "unto"][i % 4],
            "max_new_tokens": 40 + 7 * i,
            "temperature": [0.0, 0.8, 1.0, 1.3][i % 4],
            "top_k": [0, 5, 0, 10][i % 4],
            "seed": 100 + i,
            "stop": ["israel"] if i % 3 == 0 else [],
        }
        for i in range(count)
    ]
    return [parse_generate(body, models, Limits()) for body in bodies]


async def collect(batcher: ContinuousBatcher, request, delay: int) -> str:
    for _ in range(delay):  # join a few steps late, while others are running
        await asyncio.sleep(0)
    ticket = batcher.admit(request)
    return "".join([piece async for piece in batcher.pieces(ticket)])


def test_concurrent_streams_equal_each_alone(models: dict) -> None:
    requests = requests_for(models, 8)
    generator = models["tiny"]
    alone = [
        "".join(
            generator.generate(r.prompt, r.max_new_tokens, r.sampling, r.seed, r.stop, r.unknown)
        )
        for r in requests
    ]

    batcher = ContinuousBatcher(generator, max_streams=16)

    async def main() -> list[str]:
        jobs = [collect(batcher, r, delay=3 * i) for i, r in enumerate(requests)]
        return list(await asyncio.gather(*jobs))

    assert asyncio.run(main()) == alone
    assert asyncio.run(main()) == alone  # the batch emptied, then took new streams
    assert batcher.rows / batcher.steps > 2  # streams really stepped together
    assert batcher.active == 0


def test_a_client_that_leaves_frees_its_slot(models: dict) -> None:
    long, short = requests_for(models, 2)
    long.max_new_tokens = 100_000

    async def main() -> ContinuousBatcher:
        batcher = ContinuousBatcher(models["tiny"], max_streams=1)
        ticket = batcher.admit(long)
        async for _ in batcher.pieces(ticket):
            break  # the client hangs up after its first piece
        with pytest.raises(RequestError) as busy:  # its slot is released at the next step
            batcher.admit(short)
        assert busy.value.status == 503
        while batcher.active:
            await asyncio.sleep(0.01)
        assert len(batcher.batch) == 0
        return await collect(batcher, short, 0), batcher

    text, batcher = asyncio.run(main())
    assert text and batcher.active == 0


def test_protocol_lines(models: dict) -> None:
    """The streamed body: JSON text lines, then one done line counting the characters."""
    pytest.importorskip("ray", reason="needs the `serve` extra")
    from rnnedge.serve.app import json_lines  # imports Ray Serve

    (request,) = requests_for(models, 1)

    async def main() -> list[str]:
        batcher = ContinuousBatcher(models["tiny"], max_streams=1)
        return [line async for line in json_lines(batcher, batcher.admit(request))]

    lines = [json.loads(line) for line in asyncio.run(main())]
    text = "".join(line.get("text", "") for line in lines)
    assert lines[-1] == {"done": True, "chars": len(text)}
    assert all(set(line) == {"text"} for line in lines[:-1])


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["no-such-model"], ["no-such-model"]),
        (["fortune-langid", "--replicas", "0"], ["--replicas"]),
        (["fortune-langid", "--flush-ms", "-1"], ["--flush-ms"]),
    ],
)
def test_serve_refuses_bad_options_before_starting_ray(args: list[str], needles: list[str]) -> None:
    error_line(invoke("serve", *args), *needles)
