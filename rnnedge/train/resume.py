"""What a resumed run may change, and the one-line refusals when it may not.

``--resume`` continues the run in ``--out`` as it was started: every option the user does
not give is the run's own (read from ``last.pt``'s ``train_config``), and the model and
vocabulary are rebuilt from the checkpoint, never from the current flags. An option the user
does give must agree with the run, except the few a resume may change (how long, how often
and how precisely to train: ``steps``, ``eval_every``, ``checkpoint_every``,
``sample_every``, ``precision``, and per machine ``device`` and ``threads``). Any other
difference is refused with one line naming it.

The training data must be the same (same sha256). ``allow_new_data`` lets a run continue on a
new data file its vocabulary covers; the held-out "best" then restarts on the new held-out
data (a score on other data is no yardstick), and the old ``best.pt`` is kept as
``best-before-step-N.pt`` instead of being overwritten.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import torch

from rnnedge.errors import InputError
from rnnedge.train.checkpoint import load_checkpoint

C = TypeVar("C")
# Options that belong to one invocation or one machine, never taken from the checkpoint.
NOT_ADOPTED = ("out", "resume", "allow_new_data", "given", "device", "threads")
# Options that only steer this invocation: not stored in the checkpoint's train_config.
NOT_STORED = ("allow_new_data", "given")


def previous_run(config: Any) -> dict[str, Any] | None:
    """The checkpoint to resume from, or None; refuses to overwrite a run silently."""
    last_path = Path(config.out) / "last.pt"
    if config.resume and last_path.exists():
        return load_checkpoint(last_path)
    if last_path.exists():
        raise InputError(
            f"{config.out!r} already holds a run; pass --resume to continue it "
            "or choose another --out"
        )
    return None


def given_fields(config: Any) -> set[str]:
    """The options the user set: `config.given` when the caller knows (the CLI can tell a
    typed flag from a default), else every option that differs from its default."""
    if config.given is not None:
        return set(config.given)
    return {f.name for f in dataclasses.fields(config) if getattr(config, f.name) != f.default}


def option_text(name: str, value: Any) -> str:
    """How the user would type `name` = `value`: ``--hidden 512``, ``--no-bidirectional``."""
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return f"--{flag} {value}"


def adopt_run_config(config: C, resumed: dict[str, Any] | None) -> C:
    """`config` with the resumed run's options wherever the user gave none.

    A given option that differs from the run is refused (InputError, one line), unless
    `config.resume_may_change()` lists it.
    """
    if not resumed:
        return config
    saved = resumed.get("train_config", {})
    given, free = given_fields(config), config.resume_may_change()
    adopted = {}
    for f in dataclasses.fields(config):
        name = f.name
        if name in NOT_ADOPTED or name not in saved:
            continue  # an option older checkpoints lack keeps its current value
        ours, theirs = getattr(config, name), saved[name]
        if name in given and ours != theirs and name not in free:
            shown = option_text(name, theirs) if isinstance(theirs, bool) else theirs
            raise InputError(
                f"{option_text(name, ours)} differs from the run in {config.out} ({shown}); "
                "drop the flag or start a new --out"
            )
        if name not in given:
            adopted[name] = theirs
    return dataclasses.replace(config, **adopted)


def check_steps(config: Any, resumed: dict[str, Any] | None) -> None:
    """A resume may extend a run, not shorten it below the step it already reached."""
    if resumed and config.steps < int(resumed["step"]):
        raise InputError(
            f"--steps {config.steps} is below the step the run in {config.out} reached "
            f"({resumed['step']}); pass a larger --steps"
        )


def on_new_data(config: Any, resumed: dict[str, Any] | None, sha256: str, what: str) -> bool:
    """Whether the resume continues on other data than the run's (allowed by
    `config.allow_new_data`, refused otherwise). `what` names the data as the user gave it.

    A checkpoint without a data fingerprint (older classifiers) is taken to match.
    """
    data = (resumed or {}).get("data", {})
    old = data.get("sha256")
    if old is None or old == sha256:
        return False
    if not config.allow_new_data:
        source = f" of {data['path']}" if data.get("path") else ""
        raise InputError(
            f"{what} is not the data the run in {config.out} was trained on (sha256 "
            f"{sha256[:12]}…, the run's {old[:12]}…{source}); pass the run's data, add "
            "--allow-new-data to continue on this data, or start a new --out"
        )
    return True


def char_text(ch: str) -> str:
    """A character as a one-line, unambiguous name: ``'Z' (U+005A)``, ``'\\n' (U+000A)``."""
    return f"{ch!r} (U+{ord(ch):04X})"


def set_aside_best(out: Path, step: int) -> None:
    """Keep the old data's best.pt as best-before-step-N.pt before a new data's best replaces
    it. If that name exists already (an earlier attempt of the same switch), best.pt came
    from the abandoned attempt and is left for the new best to overwrite."""
    best, aside = out / "best.pt", out / f"best-before-step-{step}.pt"
    if best.exists() and not aside.exists():
        best.rename(aside)


def rng_states(generator: torch.Generator) -> dict[str, Any]:
    """Every random stream a step draws from: batches, torch's CPU RNG and each CUDA RNG."""
    states = {"torch": torch.get_rng_state(), "batches": generator.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any], generator: torch.Generator) -> None:
    """Inverse of `rng_states`. Checkpoints without CUDA states (written on a CPU, or by older
    code) leave the CUDA RNGs as seeded; states for GPUs this machine lacks are skipped."""
    generator.set_state(states["batches"])
    torch.set_rng_state(states["torch"])
    cuda = states.get("cuda") or []
    if cuda and torch.cuda.is_available():
        for index, state in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, index)
