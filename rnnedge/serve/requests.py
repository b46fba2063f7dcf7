"""HTTP request bodies → checked requests, or one clear message with a 4xx status.

Pure Python over the runtime (no Ray, no web framework), so every refusal is tested
without a server. Option names in messages are the JSON field names (``max_new_tokens``),
not the CLI's (``--max-new-tokens``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnedge.errors import RnnedgeError
from rnnedge.runtime.classify import Classifier
from rnnedge.runtime.generate import Generator
from rnnedge.runtime.sampling import SamplingConfig

SEED_RANGE = (-(2**63), 2**64 - 1)  # seeds are taken modulo 2**64 (rnnedge.runtime.prng)


class RequestError(Exception):
    """A refused request: the HTTP status and one line saying what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; bounds memory and time per request."""

    max_prompt_chars: int = 100_000
    max_new_tokens: int = 4096
    max_inputs: int = 1024
    max_input_chars: int = 100_000
    max_streams: int = 1024  # concurrent generations per model and replica
    flush_ms: float = 20.0  # text made within this time of a piece is sent with it


@dataclass
class GenerateRequest:
    model: str
    prompt: str
    max_new_tokens: int
    sampling: SamplingConfig
    seed: int | None
    stop: tuple[str, ...] = ()
    unknown: str | None = None


@dataclass
class ClassifyRequest:
    model: str
    inputs: list[Any] = field(default_factory=list)
    top: int = 1


def json_option_names(message: str) -> str:
    """A library message with CLI option names (``--top-k``) as JSON fields (``top_k``)."""
    return re.sub(r"--([a-z]+(?:-[a-z]+)*)", lambda m: m.group(1).replace("-", "_"), message)


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request's JSON object, or a 400 naming what is wrong with it."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RequestError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    return body


def take(body: dict[str, Any], name: str, kinds: tuple[type, ...], default: Any) -> Any:
    """`body[name]` if it has one of `kinds` (bools are not numbers), else a 400."""
    value = body.get(name)
    if value is None:  # absent or null: the default
        return default
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        wanted = " or ".join(JSON_TYPES[k] for k in kinds)
        raise RequestError(400, f"{name} must be {wanted}, got {json_type(value)}")
    return value


JSON_TYPES = {str: "a string", int: "an integer", float: "a number", list: "a list"}


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return next((n for t, n in JSON_TYPES.items() if isinstance(value, t)), "a value")


def known_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        fields = ", ".join(sorted(allowed))
        raise RequestError(400, f"unknown field {unknown[0]!r}; fields: {fields}")


def pick_model(body: dict[str, Any], models: dict[str, Any], kind: type) -> tuple[str, Any]:
    """The loaded model the body names (or the only one of its task): 404 when unknown."""
    name = take(body, "model", (str,), None)
    fitting = [n for n, m in models.items() if isinstance(m, kind)]
    if name is None:
        if len(fitting) != 1:
            raise RequestError(400, f'give "model": one of {", ".join(fitting) or "(none)"}')
        name = fitting[0]
    if name not in models:
        raise RequestError(404, f"unknown model {name!r}; loaded: {', '.join(models)}")
    if not isinstance(models[name], kind):
        use = "/v1/generate" if isinstance(models[name], Generator) else "/v1/classify"
        raise RequestError(400, f"model {name!r} is a {models[name].task} model; use {use}")
    return name, models[name]


GENERATE_FIELDS = {"model", "prompt", "max_new_tokens", "temperature", "top_k", "top_p"}
GENERATE_FIELDS |= {"seed", "stop", "unknown"}


def parse_generate(body: dict[str, Any], models: dict[str, Any], limits: Limits) -> GenerateRequest:
    """A checked generation request (prompt encodable, sampling valid, within limits)."""
    known_fields(body, GENERATE_FIELDS)
    name, generator = pick_model(body, models, Generator)
    prompt = take(body, "prompt", (str,), "")
    if len(prompt) > limits.max_prompt_chars:
        raise RequestError(
            413, f"prompt has {len(prompt):,} characters; the limit is {limits.max_prompt_chars:,}"
        )
    max_new = take(body, "max_new_tokens", (int,), min(200, limits.max_new_tokens))
    if not 0 <= max_new <= limits.max_new_tokens:
        raise RequestError(400, f"max_new_tokens must be in 0..{limits.max_new_tokens}")
    seed = take(body, "seed", (int,), None)
    if seed is not None and not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise RequestError(400, "seed must fit in 64 bits")
    stop = take(body, "stop", (list, str), [])
    stop = [stop] if isinstance(stop, str) else stop
    if not all(isinstance(s, str) for s in stop) or len(stop) > 16:
        raise RequestError(400, "stop must be a string or a list of at most 16 strings")
    unknown = take(body, "unknown", (str,), None)
    try:
        sampling = generator.sampling_config(
            take(body, "temperature", (int, float), None),
            take(body, "top_k", (int,), None),
            take(body, "top_p", (int, float), None),
        )
        if unknown not in (None, "error", "skip"):
            raise RequestError(400, f"unknown must be error or skip, got {unknown!r}")
        generator.encode_prompt(prompt, unknown)
    except RnnedgeError as exc:
        raise RequestError(400, json_option_names(str(exc))) from None
    return GenerateRequest(name, prompt, max_new, sampling, seed, tuple(stop), unknown)


def parse_classify(body: dict[str, Any], models: dict[str, Any], limits: Limits) -> ClassifyRequest:
    """A checked classification request: a non-empty list of inputs the model can read."""
    known_fields(body, {"model", "inputs", "top"})
    name, classifier = pick_model(body, models, Classifier)
    inputs = take(body, "inputs", (list,), None)
    if not inputs:
        raise RequestError(400, "inputs must be a non-empty list")
    if len(inputs) > limits.max_inputs:
        raise RequestError(413, f"{len(inputs):,} inputs; the limit is {limits.max_inputs:,}")
    top = take(body, "top", (int,), 1)
    if not 1 <= top <= len(classifier.labels):
        raise RequestError(400, f"top must be in 1..{len(classifier.labels)}")
    items = [checked_input(classifier, item, limits) for item in inputs]
    try:
        for item in items:
            classifier.encode(item)  # unknown characters, wrong feature width, bad "a+b"
    except RnnedgeError as exc:
        raise RequestError(400, json_option_names(str(exc))) from None
    return ClassifyRequest(name, items, top)


def checked_input(classifier: Classifier, item: Any, limits: Limits) -> Any:
    """A string (text or "a+b" models), or a [steps, features] array of numbers: integers are
    raw pixels the model scales itself, as in `rnnedge infer classify --images`."""
    if isinstance(item, str) and item:
        if len(item) > limits.max_input_chars:
            limit = limits.max_input_chars
            raise RequestError(413, f"an input has {len(item):,} characters (limit {limit:,})")
        return item
    if classifier.inputs.reads_text:
        raise RequestError(400, "each input must be a non-empty string for this model")
    try:
        array = np.asarray(item)
    except (TypeError, ValueError):
        array = np.zeros(0)
    numeric = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    if not numeric or array.ndim != 2 or not 0 < array.size <= limits.max_input_chars:
        raise RequestError(400, "each input must be a non-empty [steps, features] list of numbers")
    return array if np.issubdtype(array.dtype, np.integer) else array.astype(np.float32)
