"""The validation gate: the exported graph must behave like the torch model.

Checks (all at batch sizes and lengths other than the traced example 2 × 5):
- ``axes``: batch and time are symbolic in the graph;
- ``parity``: torch vs onnxruntime logits and states from random tokens and random states;
- ``rollout``: K single steps carrying state == one call over the K tokens (in ORT);
- ``greedy``: greedy continuation from torch and from ORT agree token for token.
For a reduced-precision graph (int8, fp16), max-abs parity is the wrong yardstick: its
``parity`` is the argmax agreement and cross-entropy change on real text, and greedy
agreement is reported, not gated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rnnedge.contract import LOGITS, RECENT_TOKENS, check_declared_tensors
from rnnedge.errors import ModelError, ValidationError
from rnnedge.exporter.onnx_io import declared_tensors, symbolic_axes
from rnnedge.nets.classifier import POOL_COUNT
from rnnedge.nets.language_model import LanguageModel
from rnnedge.runtime.classify import Classifier
from rnnedge.runtime.generate import Generator
from rnnedge.runtime.graph import StatefulGraph

PARITY_SHAPES = ((1, 1), (3, 7), (1, 64), (4, 33))  # (batch, time), none equal to (2, 5)
FP32_TOLERANCE = 2e-4
ROLLOUT_STEPS = 32
GREEDY_TOKENS = 64
REDUCED_MIN_AGREEMENT = 0.97


@dataclass
class Check:
    """One named check: its figures and whether it passed."""

    name: str
    passed: bool
    figures: dict[str, Any] = field(default_factory=dict)


def torch_run(
    model: nn.Module, inputs: np.ndarray, state: dict[str, np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The torch model on contract-layout inputs: inputs [B, T(, D)], states [B, L, H]."""
    with torch.no_grad():
        native = tuple(torch.from_numpy(s).transpose(0, 1).contiguous() for s in state.values())
        logits, new_state = model.forward_steps(torch.from_numpy(inputs), native)
        return logits.numpy(), [s.transpose(0, 1).numpy() for s in new_state]


def random_inputs(model: nn.Module, batch: int, time: int, rng: np.random.Generator) -> np.ndarray:
    """Random token ids [B, T] or features [B, T, D] for the model's input kind."""
    config = model.config
    if getattr(config, "input", "tokens") == "features":
        return rng.random((batch, time, config.feature_dim), dtype=np.float32)
    return rng.integers(0, config.vocab_size, size=(batch, time), dtype=np.int64)


def random_state(
    runtime: StatefulGraph, batch: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """A state as if some input had been read already: random values of the right shapes
    (a step count is a whole number of steps, and recent tokens are token ids, so they
    get those)."""
    vocab_size = int(runtime.manifest.architecture.get("vocab_size") or 1)
    return {
        name: (
            rng.integers(0, 20, value.shape).astype(np.float32)
            if name.endswith(POOL_COUNT)
            else rng.integers(0, vocab_size, value.shape).astype(np.float32)
            if name.endswith(RECENT_TOKENS)
            else (0.5 * rng.standard_normal(value.shape)).astype(np.float32)
        )
        for name, value in runtime.initial_state(batch).items()
    }


def check_axes(model_bytes: bytes, runtime: StatefulGraph) -> Check:
    """Batch and time axes symbolic where the contract says, and every tensor declared by
    the graph exactly as the manifest states it (dtype and shape)."""
    try:
        check_declared_tensors(runtime.manifest, declared_tensors(model_bytes), "export")
    except ModelError as exc:
        return Check("axes", False, {"error": str(exc)})
    axes = symbolic_axes(model_bytes)
    state_ok = all(
        axes[s.input][0] == "batch" and axes[s.output][0] == "batch"
        for s in runtime.manifest.states
    )
    time_axes = [runtime.input_name, LOGITS] if runtime.manifest.states else [runtime.input_name]
    passed = all(axes[name][:2] == ["batch", "time"] for name in time_axes)
    passed = passed and axes[LOGITS][0] == "batch"
    return Check("axes", passed and state_ok, {"shapes": axes})


def check_parity(model: nn.Module, runtime: StatefulGraph, rng: np.random.Generator) -> Check:
    worst, cases = 0.0, []
    for batch, time in PARITY_SHAPES:
        tokens = random_inputs(model, batch, time, rng)
        state = random_state(runtime, batch, rng)
        ort_logits, ort_state = runtime.run(tokens, state)
        ref_logits, ref_state = torch_run(model, tokens, state)
        diff = max(
            [float(np.abs(ort_logits - ref_logits).max())]
            + [
                float(np.abs(a - b).max())
                for a, b in zip(ort_state.values(), ref_state, strict=True)
            ]
        )
        cases.append({"batch": batch, "time": time, "max_abs_diff": diff})
        worst = max(worst, diff)
    return Check(
        "parity",
        worst <= FP32_TOLERANCE,
        {"max_abs_diff": worst, "tolerance": FP32_TOLERANCE, "cases": cases},
    )


def check_rollout(
    model: nn.Module, runtime: StatefulGraph, rng: np.random.Generator, reduced: bool
) -> Check:
    """K single steps vs one call over K tokens.

    fp32 must agree to FP32_TOLERANCE. Dynamic int8 quantizes activations with a scale
    computed per call, and fp16 rounds the state at each step's edge but not inside one
    call, so a step and a whole-sequence call round differently: there the gate is argmax
    agreement, and the max difference is reported.
    """
    batch = 3
    tokens = random_inputs(model, batch, ROLLOUT_STEPS, rng)
    start = random_state(runtime, batch, rng)
    whole_logits, whole_state = runtime.run(tokens, start)
    state, steps = start, []
    for t in range(ROLLOUT_STEPS):
        logits, state = runtime.run(tokens[:, t : t + 1], state)
        steps.append(logits)
    stepped = np.concatenate(steps, axis=1)  # [B, K, V]
    diff = max(
        [float(np.abs(stepped - whole_logits).max())]
        + [float(np.abs(state[k] - whole_state[k]).max()) for k in state]
    )
    agreement = float((stepped.argmax(-1) == whole_logits.argmax(-1)).mean())
    passed = agreement >= REDUCED_MIN_AGREEMENT if reduced else diff <= FP32_TOLERANCE
    return Check(
        "rollout",
        passed,
        {
            "steps": ROLLOUT_STEPS,
            "max_abs_diff": diff,
            "argmax_agreement": agreement,
            "gate": "argmax agreement" if reduced else "max abs diff",
            "tolerance": None if reduced else FP32_TOLERANCE,
        },
    )


def greedy_torch(model: LanguageModel, prompt: np.ndarray, count: int) -> list[int]:
    with torch.no_grad():
        logits, state = model(torch.from_numpy(prompt[None, :]))
        out = []
        for _ in range(count):
            token = int(logits[0, -1].argmax())
            out.append(token)
            logits, state = model(torch.tensor([[token]]), state)
        return out


def greedy_ort(runtime: Generator, prompt: np.ndarray, count: int) -> list[int]:
    logits, state = runtime.run(prompt[None, :], runtime.initial_state(1))
    out = []
    for _ in range(count):
        token = int(logits[0, -1].argmax())
        out.append(token)
        logits, state = runtime.run(np.array([[token]], dtype=np.int64), state)
    return out


def check_greedy(model: LanguageModel, runtime: Generator, prompt: np.ndarray, gate: bool) -> Check:
    expected = greedy_torch(model, prompt, GREEDY_TOKENS)
    got = greedy_ort(runtime, prompt, GREEDY_TOKENS)
    agree = next(
        (i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if a != b), GREEDY_TOKENS
    )
    return Check(
        "greedy",
        agree == GREEDY_TOKENS or not gate,
        {
            "tokens": GREEDY_TOKENS,
            "identical_prefix": agree,
            "gated": gate,
            "text": runtime.tokenizer.decode(got),
        },
    )


def check_reduced_agreement(model: LanguageModel, runtime: Generator, sample: np.ndarray) -> Check:
    """Argmax agreement and cross-entropy change of an int8/fp16 graph vs torch on real text."""
    tokens = sample[None, :-1]  # [1, T]
    targets = torch.from_numpy(sample[1:])
    ort_logits, _ = runtime.run(tokens, runtime.initial_state(1))
    ref_logits, _ = torch_run(model, tokens, runtime.initial_state(1))
    agreement = float((ort_logits.argmax(-1) == ref_logits.argmax(-1)).mean())
    ce_ort = F.cross_entropy(torch.from_numpy(ort_logits[0]), targets).item()
    ce_ref = F.cross_entropy(torch.from_numpy(ref_logits[0]), targets).item()
    return Check(
        "parity",
        agreement >= REDUCED_MIN_AGREEMENT,
        {
            "argmax_agreement": agreement,
            "min_agreement": REDUCED_MIN_AGREEMENT,
            "cross_entropy_torch": ce_ref,
            "cross_entropy_onnx": ce_ort,
            "cross_entropy_change": ce_ort - ce_ref,
            "chars": int(tokens.size),
        },
    )


def validate(
    model: LanguageModel,
    model_bytes: bytes,
    runtime: Generator,
    prompt: np.ndarray,
    reduced: bool,
    seed: int = 0,
) -> dict[str, Any]:
    """Run every check; raise ValidationError naming the failures, else return the report."""
    rng = np.random.default_rng(seed)
    checks = [check_axes(model_bytes, runtime)]
    if reduced:
        checks.append(check_reduced_agreement(model, runtime, prompt))
        checks.append(check_rollout(model, runtime, rng, reduced=True))
    else:
        checks.append(check_parity(model, runtime, rng))
        checks.append(check_rollout(model, runtime, rng, reduced=False))
    checks.append(check_greedy(model, runtime, prompt[:32], gate=not reduced))
    return report_or_raise(checks)


def report_or_raise(checks: list[Check]) -> dict[str, Any]:
    """The report of passed checks; ValidationError naming each failure otherwise."""
    report = {c.name: {"passed": c.passed, **c.figures} for c in checks}
    failed = [c for c in checks if not c.passed]
    if failed:
        details = "; ".join(f"{c.name}: {summarize(c)}" for c in failed)
        raise ValidationError(
            f"exported graph failed validation ({details}); nothing was "
            "written. Pass --no-validate to write it anyway"
        )
    return report


def summarize(check: Check) -> str:
    keys = ("max_abs_diff", "tolerance", "argmax_agreement", "identical_prefix", "shapes")
    return ", ".join(f"{k}={check.figures[k]}" for k in keys if k in check.figures)


BATCH_LENGTHS = (9, 1, 5, 13)  # a padded batch whose longest row is not the first
BATCH_TOLERANCE = 1e-5


def padded_batch(model: nn.Module, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array(BATCH_LENGTHS, dtype=np.int64)
    inputs = random_inputs(model, len(lengths), int(lengths.max()), rng)
    for row, length in enumerate(lengths):
        inputs[row, length:] = 0  # padding, whatever the pad value: it must not matter
    return inputs, lengths


def check_lengths_parity(
    model: nn.Module, runtime: StatefulGraph, rng: np.random.Generator
) -> Check:
    """torch vs ORT on a padded batch of mixed lengths."""
    inputs, lengths = padded_batch(model, rng)
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs), torch.from_numpy(lengths)).numpy()
    diff = float(np.abs(runtime.run_lengths(inputs, lengths) - expected).max())
    return Check(
        "parity",
        diff <= FP32_TOLERANCE,
        {"max_abs_diff": diff, "tolerance": FP32_TOLERANCE, "lengths": list(BATCH_LENGTHS)},
    )


def check_batch_invariance(
    model: nn.Module, runtime: StatefulGraph, rng: np.random.Generator
) -> Check:
    """In ORT: each row of a padded batch == that input run alone (unpadded)."""
    inputs, lengths = padded_batch(model, rng)
    together = runtime.run_lengths(inputs, lengths)
    diff = 0.0
    for row, length in enumerate(lengths):
        alone = runtime.run_lengths(inputs[row : row + 1, :length], lengths[row : row + 1])
        mine = together[row : row + 1]
        if mine.ndim == 3:  # per-step outputs: compare the real steps
            mine, alone = mine[:, :length], alone[:, :length]
        diff = max(diff, float(np.abs(mine - alone).max()))
    return Check(
        "batch_invariance",
        diff <= BATCH_TOLERANCE,
        {"max_abs_diff": diff, "tolerance": BATCH_TOLERANCE, "lengths": list(BATCH_LENGTHS)},
    )


def validate_classifier(
    model: nn.Module, model_bytes: bytes, runtime: StatefulGraph, seed: int = 0
) -> dict[str, Any]:
    """Streaming graphs: axes, parity, rollout. Lengths graphs: axes, parity, batch invariance."""
    rng = np.random.default_rng(seed)
    checks = [check_axes(model_bytes, runtime)]
    if runtime.manifest.states:
        checks += [
            check_parity(model, runtime, rng),
            check_rollout(model, runtime, rng, reduced=False),
        ]
    else:
        checks += [
            check_lengths_parity(model, runtime, rng),
            check_batch_invariance(model, runtime, rng),
        ]
    return report_or_raise(checks)


INVARIANCE_SAMPLE = 16  # held-out inputs compared batched vs alone, reduced precision


def flat_predictions(classifier: Classifier, items: list[Any]) -> list[np.ndarray]:
    """Predicted class ids per input: [1] for pooled models, [T] for per-step ones."""
    return [np.atleast_1d(logits.argmax(-1)) for logits in classifier.logits(items)]


def validate_reduced_classifier(
    fp32: Classifier,
    reduced: Classifier,
    precision: str,
    items: list[Any],
    targets: list[np.ndarray],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A `precision` (int8/fp16) graph vs fp32 on labelled held-out inputs: (checks report,
    quality figures).

    Gated: the two agree on at least REDUCED_MIN_AGREEMENT of the predictions. Recorded: both
    accuracies and the change in points, and how far a batched answer is from the same
    input alone (dynamic int8 scales activations per call, so it is not exactly zero).
    """
    expected = [np.atleast_1d(t) for t in targets]
    ours, theirs = flat_predictions(reduced, items), flat_predictions(fp32, items)

    def accuracy(predicted: list[np.ndarray]) -> float:
        return float(
            np.mean(np.concatenate([p == t for p, t in zip(predicted, expected, strict=True)]))
        )

    agreement = float(np.mean(np.concatenate([a == b for a, b in zip(ours, theirs, strict=True)])))
    quality = {
        "heldout_examples": len(items),
        "accuracy_fp32": accuracy(theirs),
        f"accuracy_{precision}": accuracy(ours),
        "measured_on": reduced.provider,
    }
    quality["accuracy_change_points"] = 100 * (accuracy(ours) - quality["accuracy_fp32"])
    sample = items[:INVARIANCE_SAMPLE]
    batched = reduced.padded_logits([reduced.encode(item) for item in sample])
    alone = [reduced.padded_logits([reduced.encode(item)])[0] for item in sample]
    drift = max(float(np.abs(a - b).max()) for a, b in zip(batched, alone, strict=True))
    checks = [
        Check(
            "agreement",
            agreement >= REDUCED_MIN_AGREEMENT,
            {"argmax_agreement": agreement, "min_agreement": REDUCED_MIN_AGREEMENT},
        ),
        Check("batch_invariance", True, {"max_abs_diff": drift, "gate": "reported, not gated"}),
    ]
    return report_or_raise(checks), quality
