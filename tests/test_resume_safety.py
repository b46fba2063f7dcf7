"""Resume safety: a resume continues the run as it was, or is refused with one line.

Covers the options a resume takes from the run, refusals of other architectures and other
data, ``allow_new_data`` (vocabulary coverage, best restarted), the CUDA RNG states, the bf16
probe and what the CLI user sees. Tiny models, a few steps, one thread.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from conftest import make_text, train_tiny
from helpers import error_line, invoke, succeeded
from rnnedge.errors import InputError
from rnnedge.sources import LabelledSet, addition_set
from rnnedge.train.checkpoint import save_checkpoint
from rnnedge.train.classify import ClassifierTrainConfig, fit_labelled
from rnnedge.train.lm import LMTrainConfig, fit
from rnnedge.train.resume import restore_rng_states, rng_states

SHORT = dict(steps=4, eval_every=2, checkpoint_every=2)


def load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def lm_run(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step run (hidden 32, two layers); tests copy it before changing it."""
    out = tmp_path_factory.mktemp("lm") / "run"
    train_tiny(corpus, out, **SHORT)
    return out


@pytest.fixture
def run_copy(lm_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(lm_run, tmp_path / "run"))


def refused(corpus: Path, out: Path, **options) -> str:
    """The one-line InputError of resuming `out` with `options`; the run is left as it was."""
    before = (out / "last.pt").read_bytes()
    with pytest.raises(InputError) as caught:
        train_tiny(corpus, out, **{**SHORT, "steps": 6, "resume": True, **options})
    assert (out / "last.pt").read_bytes() == before
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [
        ("hidden", 64, "--hidden 64 differs from the run in {out} (32)"),
        ("cell", "gru", "--cell gru differs from the run in {out} (lstm)"),
        ("layers", 1, "--layers 1 differs"),
        ("embed_dim", 8, "--embed-dim 8 differs"),
        ("dropout", 0.25, "--dropout 0.25 differs"),
        ("batching", "sequential", "--batching sequential differs"),
        ("batch_size", 4, "--batch-size 4 differs"),
        ("seq_len", 16, "--seq-len 16 differs"),
        ("valid_fraction", 0.2, "--valid-fraction 0.2 differs"),
        ("optimizer", "sgd", "--optimizer sgd differs"),
        ("lr", 0.01, "--lr 0.01 differs"),
        ("seed", 3, "--seed 3 differs"),
    ],
)
def test_resume_refuses_other_options_in_one_line(corpus, lm_run, option, value, shown):
    message = refused(corpus, lm_run, **{option: value})
    assert shown.format(out=lm_run) in message
    assert message.endswith("drop the flag or start a new --out")


def test_resume_takes_every_option_not_given_from_the_run(corpus, run_copy):
    """Only text, out, resume and steps given: the run's architecture and batching go on."""
    summary = fit(LMTrainConfig(text=str(corpus), out=str(run_copy), resume=True, steps=6))
    payload = load(run_copy / "last.pt")
    assert summary["step"] == payload["step"] == 6
    assert payload["model_config"]["hidden"] == 32 and payload["model_config"]["embed_dim"] == 16
    assert payload["train_config"]["batch_size"] == 8 and payload["train_config"]["steps"] == 6


def test_given_names_the_options_the_user_typed(corpus, lm_run):
    """With `given` (what the CLI passes), a typed default still counts as a request."""
    config = LMTrainConfig(
        text=str(corpus), out=str(lm_run), resume=True, steps=6, given=("text", "out", "hidden")
    )
    with pytest.raises(InputError, match=r"^--hidden 256 differs from the run"):
        fit(config)


def test_resume_extends_steps_and_may_change_how_often_it_evaluates(corpus, run_copy):
    train_tiny(corpus, run_copy, steps=8, eval_every=4, checkpoint_every=4, resume=True)
    payload = load(run_copy / "last.pt")
    assert payload["step"] == 8 and payload["train_config"]["eval_every"] == 4


def test_resume_refuses_fewer_steps_than_the_run_reached(corpus, lm_run):
    assert "--steps 2 is below the step the run" in refused(corpus, lm_run, steps=2)


def test_resume_on_other_text_is_refused(corpus, lm_run, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text(make_text(20_000, seed=7))
    message = refused(other, lm_run)
    assert f"--text {other} is not the data the run in {lm_run} was trained on" in message
    assert "--allow-new-data" in message


def test_new_data_must_be_covered_by_the_vocabulary(corpus, lm_run, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text(make_text(20_000, seed=7) + "Zion\n")
    message = refused(other, lm_run, allow_new_data=True)
    assert "'Z' (U+005A)" in message and "vocabulary lacks" in message


def test_new_data_restarts_the_best_and_keeps_the_old_best(corpus, run_copy, tmp_path):
    """On new data the old best score is no yardstick: best.pt is measured on the new text.

    The old run claims an unbeatable best (0.01 bits/char): compared against it, no score on
    the new text would ever reach best.pt, which would then stay the old data's model.
    """
    last = load(run_copy / "last.pt")
    save_checkpoint(run_copy / "last.pt", {**last, "best_valid_bpc": 0.01})
    old_best = (run_copy / "best.pt").read_bytes()
    other = tmp_path / "other.txt"
    other.write_text(make_text(20_000, seed=7))
    train_tiny(other, run_copy, **{**SHORT, "steps": 6}, resume=True, allow_new_data=True)
    best, last = load(run_copy / "best.pt"), load(run_copy / "last.pt")
    assert best["data"]["sha256"] == sha256(other) and best["step"] == 6
    assert best["best_valid_bpc"] == last["best_valid_bpc"] == last["valid"]["bpc"]
    assert (run_copy / "best-before-step-4.pt").read_bytes() == old_best
    assert (
        last["tokenizer"]["vocab"] == load(run_copy / "best-before-step-4.pt")["tokenizer"]["vocab"]
    )


def test_held_out_share_may_change_only_with_new_data(corpus, run_copy, tmp_path):
    """The held-out share describes the text: on the same text another share would score on
    characters trained on (refused); on new data it describes the new split."""
    assert "--valid-fraction 0.2 differs" in refused(corpus, run_copy, valid_fraction=0.2)
    other = tmp_path / "other.txt"
    other.write_text(make_text(20_000, seed=7))
    options = {**SHORT, "steps": 6, "valid_fraction": 0.2}
    train_tiny(other, run_copy, **options, resume=True, allow_new_data=True)
    assert load(run_copy / "last.pt")["train_config"]["valid_fraction"] == 0.2


def test_rng_states_include_every_cuda_device(monkeypatch):
    """CUDA RNGs are saved when CUDA is there and restored per device; absent states (CPU
    checkpoints, older code) are tolerated."""
    restored = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(
        torch.cuda, "get_rng_state_all", lambda: [torch.tensor([7], dtype=torch.uint8)]
    )
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, i: restored.__setitem__(i, s))
    generator = torch.Generator().manual_seed(1)
    states = rng_states(generator)
    assert states["cuda"][0].tolist() == [7]
    two_gpus = [torch.tensor([7], dtype=torch.uint8), torch.tensor([8], dtype=torch.uint8)]
    restore_rng_states({**states, "cuda": two_gpus}, generator)
    assert list(restored) == [0] and restored[0].tolist() == [7]  # GPU 1 is not here
    restored.clear()
    restore_rng_states({"torch": states["torch"], "batches": states["batches"]}, generator)
    assert restored == {}


def test_bf16_without_kernels_is_one_line_before_training(corpus, tmp_path, monkeypatch):
    """What oneDNN does on a CPU without bf16 LSTM kernels, simulated on any machine."""

    def no_bf16_kernel(self, *args, **kwargs):
        raise RuntimeError(
            "could not create a primitive descriptor for the LSTM forward propagation "
            "primitive. Run workload with environment variable ONEDNN_VERBOSE=all"
        )

    monkeypatch.setattr(torch.nn.LSTM, "forward", no_bf16_kernel)
    with pytest.raises(InputError) as caught:
        train_tiny(corpus, tmp_path / "run", precision="bf16", **SHORT)
    message = str(caught.value)
    assert message.startswith("--precision bf16 does not work here") and "\n" not in message
    assert "LSTM" in message and message.endswith("use --precision fp32")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_bf16_trains_or_is_refused_on_this_machine(corpus, tmp_path):
    """Never a traceback from inside torch: either bf16 works here or the one-line refusal."""
    try:
        train_tiny(corpus, tmp_path / "run", precision="bf16", steps=2, eval_every=2)
    except InputError as exc:
        assert "use --precision fp32" in str(exc)
    else:
        assert load(tmp_path / "run" / "last.pt")["step"] == 2


def test_cli_resume_with_another_hidden_is_one_line_exit_1(corpus, lm_run):
    result = invoke("train", "lm", "--text", corpus, "--out", lm_run, "--resume", "--hidden", 64)
    assert result.exit_code == 1
    error_line(result, "--hidden 64 differs from the run", "(32)", "drop the flag")


def test_cli_resume_on_other_text_is_one_line_exit_1(lm_run, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text(make_text(20_000, seed=7))
    result = invoke("train", "lm", "--text", other, "--out", lm_run, "--resume", "--steps", 6)
    assert result.exit_code == 1
    error_line(result, str(other), "is not the data the run", "--allow-new-data")


def test_cli_resume_without_the_flags_continues_the_run(corpus, run_copy):
    """Dropping the flags, as the refusal says, resumes with the run's own architecture."""
    args = ("--text", corpus, "--out", run_copy, "--resume", "--steps", 6, "--threads", 1)
    succeeded(invoke("train", "lm", *args))
    payload = load(run_copy / "last.pt")
    assert payload["step"] == 6 and payload["model_config"]["hidden"] == 32


# Classifiers: the same rules, with a fingerprint of the prepared examples as the data's sha.


def add_config(out: Path, **options) -> ClassifierTrainConfig:
    base = dict(
        out=str(out),
        cell="rnn",
        hidden=8,
        embed_dim=0,
        pooling="per-step",
        batch_size=8,
        lr=0.01,
        threads=1,
        **SHORT,
    )
    return ClassifierTrainConfig(**{**base, **options})


def fit_add(out: Path, seed: int = 0, labels: list[str] | None = None, **options) -> dict:
    train, valid = addition_set(64, 4, seed), addition_set(16, 4, seed + 1)
    if labels:
        train = LabelledSet(train.inputs, train.targets, labels, preprocessing=train.preprocessing)
    return fit_labelled(add_config(out, **options), train, valid, {"source": "add", "bits": 4})


@pytest.fixture(scope="module")
def add_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("add") / "run"
    fit_add(out)
    return out


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ({"hidden": 16}, "--hidden 16 differs from the run in {out} (8)"),
        (
            {"bidirectional": True},
            "--bidirectional differs from the run in {out} (--no-bidirectional)",
        ),
        ({"pooling": "mean"}, "--pooling mean differs"),
    ],
)
def test_classifier_resume_refuses_other_architectures(add_run, options, shown):
    with pytest.raises(InputError) as caught:
        fit_add(add_run, resume=True, steps=6, **options)
    assert shown.format(out=add_run) in str(caught.value)


def test_classifier_resume_on_other_examples_is_refused(add_run):
    with pytest.raises(InputError, match="the training data is not the data the run"):
        fit_add(add_run, seed=5, resume=True, steps=6)


def test_classifier_new_data_needs_the_runs_labels(add_run):
    with pytest.raises(InputError, match=r"labels differ .*entry 0 is 'zero', the run's '0'"):
        fit_add(add_run, seed=5, labels=["zero", "one"], resume=True, allow_new_data=True)


def test_classifier_resume_on_new_examples_with_allow_new_data(add_run, tmp_path):
    """Continues; best.pt is measured on the new examples though the old best (an
    accuracy no run can beat) would have kept it forever."""
    out = Path(shutil.copytree(add_run, tmp_path / "run"))
    last = load(out / "last.pt")
    save_checkpoint(out / "last.pt", {**last, "best_valid_accuracy": 1.01})
    summary = fit_add(out, seed=5, resume=True, steps=6, allow_new_data=True)
    best = load(out / "best.pt")
    assert summary["step"] == 6 and best["step"] == 6
    assert best["data"]["sha256"] != load(out / "best-before-step-4.pt")["data"]["sha256"]
