"""`rnnedge serve`: loaded models behind an HTTP API on Ray Serve (protocol: docs/serving.md).

- ``POST /v1/generate`` streams JSON lines: ``{"text": …}`` as text is made, then
  ``{"done": true, "chars": N}`` (or ``{"error": …}`` if the model failed mid-stream);
- ``POST /v1/classify`` answers a batch: ``{"model": …, "predictions": [...]}``;
- ``GET /v1/models`` lists the loaded models with their manifests; ``GET /health``.

A refused request is a 4xx JSON ``{"error": "<one line>"}``. Each replica loads every model
and runs one ``ContinuousBatcher`` per language model: its concurrent streams step together.
"""

# No `from __future__ import annotations` here: FastAPI reads the handlers' annotations
# (Request) after Ray Serve rewrites their signatures, and cannot resolve them as strings.
import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve

from rnnedge.serve.batcher import ContinuousBatcher, Ticket
from rnnedge.serve.requests import (
    Limits,
    RequestError,
    parse_body,
    parse_classify,
    parse_generate,
)

MAX_BODY_BYTES = 16 * 2**20
api = FastAPI(title="rnnedge", docs_url=None, redoc_url=None, openapi_url=None)


def refusal(exc: RequestError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status)


async def read_body(request: Request) -> dict[str, Any]:
    """The JSON object sent, read up to MAX_BODY_BYTES."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise RequestError(413, f"the request body is over {MAX_BODY_BYTES // 2**20} MiB")
    return parse_body(bytes(raw))


async def json_lines(batcher: ContinuousBatcher, ticket: Ticket) -> AsyncIterator[str]:
    """The streaming body: one JSON line per piece of text, then a done (or error) line."""
    chars = 0
    try:
        async for text in batcher.pieces(ticket):
            chars += len(text)
            yield json.dumps({"text": text}, ensure_ascii=False) + "\n"
    except RequestError as exc:
        yield json.dumps({"error": exc.message}) + "\n"
        return
    yield json.dumps({"done": True, "chars": chars}) + "\n"


@serve.deployment(name="rnnedge")
@serve.ingress(api)
class ModelServer:
    """One replica: every model loaded once, a continuous batcher per language model."""

    def __init__(self, refs: list[str], limits: Limits, device: str, threads: int | None) -> None:
        from rnnedge.runtime import Generator, load

        self.limits = limits
        self.models: dict[str, Any] = {}
        for ref in refs:
            model = load(ref, device=device, threads=threads)
            self.models[model.manifest.identity.get("name") or Path(ref).stem] = model
        self.batchers = {
            name: ContinuousBatcher(model, limits.max_streams, limits.flush_ms)
            for name, model in self.models.items()
            if isinstance(model, Generator)
        }

    @api.get("/health")
    async def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "models": list(self.models),
            "active_streams": {name: b.active for name, b in self.batchers.items()},
            "batched_steps": {name: b.steps for name, b in self.batchers.items()},
            "stream_steps": {name: b.rows for name, b in self.batchers.items()},
        }

    @api.get("/v1/models")
    async def list_models(self) -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": name,
                    "task": model.task,
                    "precision": model.precision,
                    "provider": model.provider,
                    "manifest": dataclasses.asdict(model.manifest),
                }
                for name, model in self.models.items()
            ]
        }

    @api.post("/v1/generate")
    async def generate(self, request: Request) -> Any:
        try:
            parsed = parse_generate(await read_body(request), self.models, self.limits)
            batcher = self.batchers[parsed.model]
            ticket = batcher.admit(parsed)
        except RequestError as exc:
            return refusal(exc)
        return StreamingResponse(json_lines(batcher, ticket), media_type="application/x-ndjson")

    @api.post("/v1/classify")
    async def classify(self, request: Request) -> Any:
        try:
            parsed = parse_classify(await read_body(request), self.models, self.limits)
        except RequestError as exc:
            return refusal(exc)
        classifier = self.models[parsed.model]
        predictions = await asyncio.to_thread(classifier.classify, parsed.inputs, parsed.top)
        return {"model": parsed.model, "predictions": [p.to_dict() for p in predictions]}


def build_app(
    refs: list[str],
    limits: Limits,
    replicas: int = 1,
    replica_cpus: float = 1.0,
    device: str = "cpu",
    threads: int | None = None,
) -> Any:
    """The Ray Serve application: `replicas` copies of the model server behind one route."""
    deployment = ModelServer.options(
        num_replicas=replicas,
        max_ongoing_requests=limits.max_streams + 64,  # streams plus health/classify calls
        ray_actor_options={"num_cpus": replica_cpus},
    )
    return deployment.bind(refs, limits, device, threads)


def start(
    refs: list[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    address: str | None = None,
    node_ip: str = "127.0.0.1",
    **options: Any,
) -> str:
    """Start (or join) Ray, deploy the models, return the base URL. Returns once ready."""
    from rnnedge.serve.cluster import init_ray

    init_ray(address, node_ip)
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(refs, **options), name="rnnedge", route_prefix="/")
    return f"http://{host}:{port}"


def stop() -> None:
    """Tear the application and this process's Ray connection down."""
    import ray

    serve.shutdown()
    ray.shutdown()
