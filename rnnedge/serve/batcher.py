"""Continuous batching for a server: every live generation of a model steps together.

One loop per model and replica. Between two steps, requests that arrived join (each
prefilled alone, its state rows appended) and streams that finished or whose client went
away leave (rows dropped); then every remaining stream advances by one token in ONE batched
graph call (``rnnedge.runtime.streams.StreamBatch``). The steps run in one worker thread per
model (onnxruntime releases the GIL), back to back while any stream lives; the event loop
keeps serving HTTP and receives each step's text in one callback. Only the worker touches
the batch: joins arrive through a queue, leaves as a flag, so neither needs a lock.

Each stream's text is what ``rnnedge infer generate`` gives alone with the same seed for
fp32 files. int8 files quantize activations with scales computed over the whole batch,
so a stream's logits depend on its neighbours and its text can differ.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from rnnedge.runtime.generate import Generator
from rnnedge.runtime.streams import StreamBatch
from rnnedge.serve.requests import GenerateRequest, RequestError

DONE = None  # the queue item that ends a stream


class ServingBatch(StreamBatch):
    """A stream batch that lives on: streams can be dropped before they finish, and new
    ones join after it has emptied."""

    def remove(self, stream_id: int) -> None:
        """Drop `stream_id`'s rows (a client that went away); no-op when already gone."""
        if stream_id not in self.ids:
            return
        keep = [row for row, sid in enumerate(self.ids) if sid != stream_id]
        self.state = {k: v[keep] for k, v in self.state.items()}  # [B-1, L, H]
        self.logits = self.logits[keep]  # [B-1, V]
        self.ids = [self.ids[row] for row in keep]
        self.streams = [self.streams[row] for row in keep]


@dataclass(eq=False)
class Ticket:
    """One request's place in the loop: its queue of text pieces, its id once joined."""

    request: GenerateRequest
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    stream_id: int | None = None
    cancelled: bool = False  # set from the event loop; read by the worker between steps


class ContinuousBatcher:
    """Runs one model's generations; `pieces` yields a request's text as it is made."""

    def __init__(self, generator: Generator, max_streams: int, flush_ms: float = 0.0) -> None:
        self.batch = ServingBatch(generator)
        self.max_streams = max_streams
        self.flush_s = flush_ms / 1000
        self._joining: queue.SimpleQueue[Ticket] = queue.SimpleQueue()  # loop → worker
        self._wake = threading.Event()
        self._live: dict[int, Ticket] = {}  # the worker's own
        self._active = 0  # admitted and not yet ended; the event loop's own
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: threading.Thread | None = None
        self.steps = 0  # batched calls made, for /health
        self.rows = 0  # stream-steps made (rows / steps = mean batch)

    @property
    def active(self) -> int:
        return self._active

    def admit(self, request: GenerateRequest) -> Ticket:
        """Queue `request` to join at the next step (503 when the replica is full)."""
        if self._active >= self.max_streams:
            raise RequestError(503, f"busy: {self._active} streams running; retry later")
        ticket = Ticket(request)
        self._active += 1
        self._loop = asyncio.get_running_loop()
        self._joining.put(ticket)
        self._wake.set()
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="rnnedge-batch", daemon=True)
            self._worker.start()
        return ticket

    async def pieces(self, ticket: Ticket) -> AsyncIterator[str]:
        """The ticket's text as it is made; on exit, early or not, its stream leaves the
        batch at the next step. After the first piece, text made within `flush_ms` of a
        piece travels with it (fewer messages through the HTTP proxy)."""
        first = True
        try:
            while True:
                item = await ticket.queue.get()
                if self.flush_s and not first and item is not DONE:
                    await asyncio.sleep(self.flush_s)
                first = False
                parts = [item]
                while item is not DONE and not ticket.queue.empty():
                    item = ticket.queue.get_nowait()
                    parts.append(item)
                text = "".join(p for p in parts if isinstance(p, str))
                if text:
                    yield text
                if isinstance(item, RequestError):
                    raise item
                if item is DONE:
                    return
        finally:
            ticket.cancelled = True

    def _work(self) -> None:
        """The worker thread: step while any stream lives, sleep when none does."""
        while True:
            joining = []
            while not self._joining.empty():
                joining.append(self._joining.get())
            if not joining and not self._live:
                self._wake.clear()
                if self._joining.empty():
                    self._wake.wait()
                continue
            try:
                events = self._advance(joining)
            except Exception as exc:  # a failed graph call ends these streams, not the server
                events = self._fail([*joining, *self._live.values()], exc)
            self._loop.call_soon_threadsafe(self._deliver, events)

    def _deliver(self, events: list[tuple[Ticket, object]]) -> None:
        """On the event loop: hand each piece to its request; count the streams that ended."""
        for ticket, item in events:
            ticket.queue.put_nowait(item)
            if item is DONE or isinstance(item, RequestError):
                self._active -= 1

    def _fail(self, tickets: list[Ticket], exc: Exception) -> list[tuple[Ticket, object]]:
        """Every stream in flight ends with `exc`; the batch starts empty again."""
        self.batch = ServingBatch(self.batch.generator)
        self._live.clear()
        error = RequestError(500, f"generation failed: {exc}")
        return [(ticket, error) for ticket in tickets]

    def _advance(self, joining: list[Ticket]) -> list[tuple[Ticket, str | None]]:
        """Worker thread: joins, leaves, one batched step; (ticket, text or DONE) events."""
        events = [(ticket, DONE) for ticket in self._join(joining)]
        for stream_id, ticket in list(self._live.items()):
            if ticket.cancelled:
                self.batch.remove(stream_id)
                events.append((self._live.pop(stream_id), DONE))
        if self.batch.streams:
            self.steps += 1
            self.rows += len(self.batch)
            events += [(self._live[sid], text) for sid, text in self.batch.step().items()]
        running = set(self.batch.ids)
        for stream_id in [sid for sid in self._live if sid not in running]:
            events.append((self._live.pop(stream_id), DONE))
        return events

    def _join(self, joining: list[Ticket]) -> list[Ticket]:
        """Prefill each new request into the batch; returns those already ended (nothing
        to make, or their client already gone)."""
        finished = []
        for ticket in joining:
            if ticket.cancelled:
                finished.append(ticket)
                continue
            request = ticket.request
            ticket.stream_id = self.batch.add(
                request.prompt,
                request.max_new_tokens,
                request.sampling,
                request.seed,
                request.stop,
                request.unknown,
            )
            if ticket.stream_id in self.batch.ids:
                self._live[ticket.stream_id] = ticket
            else:
                finished.append(ticket)  # max_new_tokens 0: nothing to make
        return finished
