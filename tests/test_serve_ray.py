"""`rnnedge serve` on Ray Serve, over HTTP on loopback: concurrent clients get exactly what
`rnnedge infer generate` gives each alone (fp32), int8 agrees by argmax, bad requests are one
4xx line, a client that hangs up frees its slot.

Runs only in a network namespace with nothing but loopback (`make test-ray` runs it under
`unshare -n`), so Ray cannot reach any other address even by mistake.
"""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from helpers import invoke, require_loopback_ray, succeeded

pytestmark = pytest.mark.ray
require_loopback_ray("Ray Serve")

PORT = 8765


@pytest.fixture(scope="module")
def server(tiny_model: Path, tiny_model_int8: Path) -> str:
    from rnnedge.serve import app
    from rnnedge.serve.requests import Limits

    app.start(
        [str(tiny_model), str(tiny_model_int8), "fortune-langid"],
        port=PORT,
        limits=Limits(max_prompt_chars=1000, max_streams=64),
    )
    yield "127.0.0.1"
    app.stop()


def post(path: str, body: bytes | dict, timeout: float = 120) -> tuple[int, list[dict]]:
    """POST to the server; (status, the JSON lines of the answer)."""
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    connection.request("POST", path, raw, {"Content-Type": "application/json"})
    response = connection.getresponse()
    lines = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    connection.close()
    return response.status, lines


def get(path: str) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    connection.request("GET", path)
    answer = json.loads(connection.getresponse().read())
    connection.close()
    return answer


def bodies(model: str, count: int, greedy: bool = False) -> list[dict]:
    return [
        {
            "model": model,
            "prompt": ["the lord", "and moses", "behold i", "unto"][i % 4],
            "max_new_tokens": 60 + 9 * i,
            "temperature": 0.0 if greedy else [0.0, 0.8, 1.0, 1.3][i % 4],
            "top_k": 0 if greedy else [0, 5, 0, 10][i % 4],
            "seed": 100 + i,
        }
        for i in range(count)
    ]


def served_texts(requests: list[dict]) -> list[str]:
    """Every request sent at once, each by its own client; the texts streamed back."""
    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(lambda body: post("/v1/generate", body), requests))
    texts = []
    for status, lines in answers:
        assert status == 200 and lines[-1]["done"], lines[-1]
        texts.append("".join(line.get("text", "") for line in lines))
    return texts


def cli_text(model: Path, body: dict) -> str:
    args = ["--prompt", body["prompt"], "--max-new-tokens", body["max_new_tokens"]]
    args += ["--temperature", body["temperature"], "--top-k", body["top_k"], "--seed", body["seed"]]
    result = succeeded(invoke("infer", "generate", model, *args, "--json"))
    return json.loads(result.stdout)["text"]


def test_fp32_concurrent_clients_equal_the_cli_alone(server: str, tiny_model: Path) -> None:
    requests = bodies("tiny-fp32", 16)
    served = served_texts(requests)
    assert served == [cli_text(tiny_model, body) for body in requests]
    health = get("/health")
    assert health["stream_steps"]["tiny-fp32"] / health["batched_steps"]["tiny-fp32"] > 1.5


def argmax_agreement(model: Path, prompt: str, text: str) -> float:
    """Share of the served tokens that are the argmax of the model run alone, fed the
    prompt and the served text before each token (teacher forcing)."""
    from rnnedge.runtime import load_generator

    generator = load_generator(model)
    stream = generator.open_stream()
    ids = generator.tokenizer.encode(prompt + text)
    logits = stream.push_encoded(ids)  # [T, V]: row t predicts token t + 1
    predicted = logits[len(prompt) - 1 : -1].argmax(-1)
    return float(np.mean(predicted == ids[len(prompt) :]))


def test_int8_agrees_by_argmax(server: str, tiny_model_int8: Path) -> None:
    """int8 scales activations per batch, so a batched stream may pick another token where
    two are near-tied; compare by argmax agreement, not text."""
    requests = bodies("tiny-int8", 16, greedy=True)
    served = served_texts(requests)
    agreement = [
        argmax_agreement(tiny_model_int8, body["prompt"], text)
        for body, text in zip(requests, served, strict=True)
    ]
    print(f"int8 served vs alone, argmax agreement: mean {np.mean(agreement):.4f}")
    assert np.mean(agreement) >= 0.97


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"model": "nope", "prompt": "the"}, 404, "unknown model 'nope'"),
        ({"model": "tiny-fp32", "prompt": "the", "top_p": 2}, 400, "top_p must be in (0, 1]"),
        ({"model": "tiny-fp32", "prompt": "x" * 1001}, 413, "the limit is 1,000"),
        (b'{"model": "tiny-fp32", "prompt": ', 400, "not valid JSON"),
        (b"\x00\xff" * 10, 400, "not valid JSON"),
    ],
)
def test_bad_requests_are_one_line(server: str, body, status: int, needle: str) -> None:
    got, lines = post("/v1/generate", body)
    assert (got, len(lines)) == (status, 1)
    assert needle in lines[0]["error"]
    assert get("/health")["status"] == "ok"


def test_a_client_that_hangs_up_frees_its_slot(server: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    body = {"model": "tiny-fp32", "prompt": "the", "max_new_tokens": 4096, "temperature": 1}
    connection.request("POST", "/v1/generate", json.dumps(body).encode())
    response = connection.getresponse()
    assert "text" in json.loads(response.readline())
    assert get("/health")["active_streams"]["tiny-fp32"] == 1
    connection.close()  # mid-stream
    for _ in range(600):  # bounded: the slot is freed within a step or two of the hang-up
        if get("/health")["active_streams"]["tiny-fp32"] == 0:
            break
    assert get("/health")["active_streams"]["tiny-fp32"] == 0


def test_models_and_batched_classification(server: str) -> None:
    from rnnedge.runtime.catalog import read_manifest, resolve_model

    listed = {m["name"]: m for m in get("/v1/models")["models"]}
    assert sorted(listed) == ["fortune-langid", "tiny-fp32", "tiny-int8"]
    manifest = read_manifest(resolve_model("fortune-langid"))
    assert listed["fortune-langid"]["manifest"]["labels"] == manifest.labels
    texts = ["Das ist ein kleines Haus.", "The cat sat on the mat.", "Il pleut encore."]
    status, (answer,) = post("/v1/classify", {"model": "fortune-langid", "inputs": texts, "top": 2})
    cli = succeeded(invoke("infer", "classify", "fortune-langid", *texts, "--top", "2", "--json"))
    expected = [json.loads(line) for line in cli.stdout.splitlines()]
    assert status == 200
    predictions = answer["predictions"]
    assert [{"input": t, **p} for t, p in zip(texts, predictions, strict=True)] == expected
