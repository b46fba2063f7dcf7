"""Serving benchmark: `rnnedge serve` (Ray Serve, continuous batching) under 1..256 clients.

Run in a loopback-only network namespace (Ray must not reach out):

    unshare -n sh -c 'ip link set lo up && .venv/bin/python benchmarks/serving.py'

Each client POSTs one /v1/generate (greedy, MAX_NEW characters) and reads the JSON lines as
they come. Throughput is all characters over the wall time from the first request to the
last answer; a token's latency is the gap between the piece that carries it and the piece
before (tokens made while a piece was in flight arrive together, each counted with that
gap); the first piece's wait is the time to first token. The same model in
process (`generate_many`, one batched call per token, no HTTP) gives the ceiling. Writes
benchmarks/SERVING.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

PORT = 8766
MAX_NEW = 200
PROMPTS = ["And God said", "In the beginning", "And the LORD spake unto Moses", "Blessed are"]


async def one_client(session, model: str, index: int) -> tuple[int, list[float], float]:
    """(characters, per-token gaps in s, time to first piece in s) of one streamed answer."""
    body = {"model": model, "prompt": PROMPTS[index % 4], "max_new_tokens": MAX_NEW}
    began = last = time.perf_counter()
    chars, gaps, first = 0, [], None
    async with session.post(f"http://127.0.0.1:{PORT}/v1/generate", json=body) as response:
        async for raw in response.content:
            line = json.loads(raw)
            now = time.perf_counter()
            text = line.get("text", "")
            if text:
                if first is None:
                    first = now - began
                else:
                    gaps += [now - last] * len(text)
                chars += len(text)
                last = now
    return chars, gaps, first or 0.0


async def load(model: str, clients: int) -> dict[str, float]:
    import aiohttp

    limits = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=limits, timeout=timeout) as session:
        began = time.perf_counter()
        results = await asyncio.gather(*(one_client(session, model, i) for i in range(clients)))
        seconds = time.perf_counter() - began
    gaps = np.concatenate([np.array(r[1]) for r in results])
    return {
        "clients": clients,
        "tokens": sum(r[0] for r in results),
        "seconds": seconds,
        "tokens_per_s": sum(r[0] for r in results) / seconds,
        "p50_ms": float(np.percentile(gaps, 50) * 1e3),
        "p99_ms": float(np.percentile(gaps, 99) * 1e3),
        "ttft_p50_ms": float(np.median([r[2] for r in results]) * 1e3),
    }


def in_process(model: str, clients: int) -> float:
    """Tokens/s of the same streams batched in this process, without HTTP or Ray."""
    from rnnedge.runtime import load_generator
    from rnnedge.runtime.streams import StreamBatch

    generator = load_generator(model, threads=1)
    batch = StreamBatch(generator)
    for i in range(clients):
        batch.add(PROMPTS[i % 4], MAX_NEW, generator.sampling_config(0.0))
    began = time.perf_counter()
    tokens = sum(len(text) for _, text in batch.run())
    return tokens / (time.perf_counter() - began)


def report(model: str, rows: list[dict], command: str) -> str:
    lines = [
        "# Serving benchmark (`rnnedge serve`, Ray Serve, continuous batching)",
        "",
        f"Model `{model}`, greedy, {MAX_NEW} characters per client, clients on loopback "
        f"(aiohttp), one replica with 1 onnxruntime thread; {platform.processor() or 'CPU'}, "
        f"{os.cpu_count()} cores shared with other work (trainings ran meanwhile). "
        f"Command: `{command}`. `flush ms`: text made within that time of a piece is sent "
        "with it (`rnnedge serve --flush-ms`, default 20); 0 sends one message per step.",
        "",
        "| flush ms | clients | tokens/s | × 1 client | per-token p50 ms | p99 ms "
        "| first token p50 ms | in-process batch tokens/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        base = next(r for r in rows if r["flush_ms"] == row["flush_ms"])["tokens_per_s"]
        lines.append(
            f"| {row['flush_ms']:g} | {row['clients']} | {row['tokens_per_s']:,.0f} "
            f"| {row['tokens_per_s'] / base:.1f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['ttft_p50_ms']:.1f} | {row['in_process']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def measure(model: str, clients: list[int], flush_ms: float, ceiling: dict) -> list[dict]:
    """Deploy `model` with `flush_ms`, then each client count in turn."""
    from rnnedge.serve import app
    from rnnedge.serve.requests import Limits

    app.start([model], port=PORT, limits=Limits(max_streams=1024, flush_ms=flush_ms), threads=1)
    asyncio.run(load(model, 4))  # warm-up: replica, proxy, connections
    rows = []
    for count in clients:
        row = {"flush_ms": flush_ms, **asyncio.run(load(model, count))}
        if count not in ceiling:
            ceiling[count] = in_process(model, count)
        row["in_process"] = ceiling[count]
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="kjv-char-lstm")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--flush-ms", type=float, nargs="+", default=[20.0, 0.0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "SERVING.md")
    args = parser.parse_args()
    from rnnedge.serve import app

    rows, ceiling = [], {}
    try:
        for flush_ms in args.flush_ms:
            rows += measure(args.model, args.clients, flush_ms, ceiling)
    finally:
        app.stop()
    command = f"python benchmarks/serving.py --clients {' '.join(map(str, args.clients))}"
    command += f" --flush-ms {' '.join(f'{f:g}' for f in args.flush_ms)}"
    args.out.write_text(report(args.model, rows, command))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
