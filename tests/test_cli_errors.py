"""The command line on bad input: one `error:` line naming the problem, a non-zero exit, no
traceback, nothing half-written; plus the happy paths of inspect, generate and eval."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import onnx.helper
import pytest
import torch

from helpers import error_line, invoke, succeeded

TINY_TRAIN = [
    "--steps",
    "2",
    "--hidden",
    "8",
    "--layers",
    "1",
    "--embed-dim",
    "4",
    "--batch-size",
    "2",
    "--seq-len",
    "8",
    "--eval-every",
    "1",
    "--checkpoint-every",
    "1",
    "--threads",
    "1",
    "--device",
    "cpu",
]


# --------------------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_models(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad-models")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    foreign = folder / "foreign.onnx"
    onnx.save(onnx.helper.make_model(graph), foreign)
    onnx.checker.check_model(onnx.load(foreign))  # a valid ONNX model, just not ours
    corrupt = folder / "corrupt.onnx"
    corrupt.write_bytes(bytes(range(256)) * 8)
    data = tiny_model.read_bytes()
    truncated = folder / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    return {
        "missing": folder / "missing.onnx",
        "foreign": foreign,
        "corrupt": corrupt,
        "truncated": truncated,
        "directory": folder,
    }


# What each kind of bad model file must make the one error line say.
BAD_MODEL_WORDS = {
    "missing": ["does not exist"],
    "foreign": ["not an rnnedge model", "rnnedge export"],
    "corrupt": ["not a loadable ONNX model"],
    "truncated": ["not a loadable ONNX model"],
    "directory": ["is a directory"],
}


@pytest.mark.parametrize("kind", list(BAD_MODEL_WORDS))
def test_generate_bad_model_file(kind: str, bad_models: dict[str, Path]) -> None:
    path = bad_models[kind]
    result = invoke("infer", "generate", path, "--prompt", "the", "--max-new-tokens", "3")
    error_line(result, str(path), *BAD_MODEL_WORDS[kind])
    assert result.stdout == ""


@pytest.mark.parametrize("kind", list(BAD_MODEL_WORDS))
def test_inspect_bad_model_file(kind: str, bad_models: dict[str, Path]) -> None:
    path = bad_models[kind]
    error_line(invoke("inspect", path), str(path), *BAD_MODEL_WORDS[kind])
    error_line(invoke("inspect", path, "--json"), str(path), *BAD_MODEL_WORDS[kind])


@pytest.mark.parametrize("kind", list(BAD_MODEL_WORDS))
def test_eval_bad_model_file(kind: str, bad_models: dict[str, Path], corpus: Path) -> None:
    path = bad_models[kind]
    error_line(invoke("eval", path, "--text", corpus), str(path), *BAD_MODEL_WORDS[kind])


def test_eval_without_text(tiny_model: Path) -> None:
    error_line(invoke("eval", tiny_model), "--text")


def test_eval_missing_text(tiny_model: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.txt"
    error_line(invoke("eval", tiny_model, "--text", missing), str(missing), "does not exist")


def test_eval_non_utf8_text(tiny_model: Path, tmp_path: Path) -> None:
    text = tmp_path / "latin1.txt"
    text.write_bytes(b"\xff\xfe abc")
    error_line(invoke("eval", tiny_model, "--text", text), str(text), "not UTF-8", "0xff")


@pytest.mark.parametrize("tail", ["0", "1.5", "-0.1"])
def test_eval_bad_tail(tail: str, tiny_model: Path, corpus: Path) -> None:
    error_line(invoke("eval", tiny_model, "--text", corpus, "--tail", tail), "--tail")


def test_eval_negative_warmup(tiny_model: Path, corpus: Path) -> None:
    error_line(invoke("eval", tiny_model, "--text", corpus, "--warmup", "-5"), "--warmup")


# --------------------------------------------------------------------------------------
# train lm
# --------------------------------------------------------------------------------------


def test_train_missing_text(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.txt"
    result = invoke("train", "lm", "--text", missing, "--out", tmp_path / "run", *TINY_TRAIN)
    error_line(result, str(missing), "does not exist")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_train_non_utf8_text(tmp_path: Path) -> None:
    text = tmp_path / "latin1.txt"
    text.write_bytes(b"\xff\xfe abc")
    result = invoke("train", "lm", "--text", text, "--out", tmp_path / "run", *TINY_TRAIN)
    error_line(result, str(text), "not UTF-8")


def test_train_text_shorter_than_one_window(tmp_path: Path) -> None:
    text = tmp_path / "short.txt"
    text.write_text("the lord said unto m")  # 20 characters
    args = [*TINY_TRAIN, "--seq-len", "100"]  # the later --seq-len wins
    result = invoke("train", "lm", "--text", text, "--out", tmp_path / "run", *args)
    error_line(result, "training text", "--seq-len")
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize("cell", ["transformer", "LSTM", ""])
def test_train_bad_cell(cell: str, corpus: Path, tmp_path: Path) -> None:
    result = invoke(
        "train", "lm", "--text", corpus, "--out", tmp_path / "run", *TINY_TRAIN, "--cell", cell
    )
    error_line(result, "--cell", repr(cell))


@pytest.fixture(scope="module")
def trained_run(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli-run") / "run"
    succeeded(invoke("train", "lm", "--text", corpus, "--out", out, *TINY_TRAIN))
    assert (out / "last.pt").is_file()
    return out


def test_train_refuses_existing_run_without_resume(trained_run: Path, corpus: Path) -> None:
    before = (trained_run / "last.pt").read_bytes()
    result = invoke("train", "lm", "--text", corpus, "--out", trained_run, *TINY_TRAIN)
    error_line(result, str(trained_run), "already holds a run", "--resume")
    assert (trained_run / "last.pt").read_bytes() == before  # the run is untouched


# --------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------


def assert_nothing_written(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [], "failed export left files behind"


def test_export_missing_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    missing = tmp_path / "nowhere.pt"
    result = invoke("export", missing, "-o", out / "x.onnx")
    error_line(result, str(missing), "does not exist")
    assert_nothing_written(out)


def test_export_text_file_is_not_a_checkpoint(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = invoke("export", corpus, "-o", out / "x.onnx")
    error_line(result, str(corpus), "checkpoint")
    assert_nothing_written(out)


def test_export_foreign_torch_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    foreign = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, foreign)
    out = tmp_path / "out"
    out.mkdir()
    result = invoke("export", foreign, "-o", out / "x.onnx")
    error_line(result, str(foreign), "not an rnnedge checkpoint")
    assert_nothing_written(out)


def test_export_checkpoint_of_another_version_names_the_unknown_option(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    payload = torch.load(tiny_checkpoint, weights_only=False)
    payload["model_config"]["pool_inputs"] = False  # an option this version does not have
    newer = tmp_path / "newer.pt"
    torch.save(payload, newer)
    out = tmp_path / "out"
    out.mkdir()
    result = invoke("export", newer, "-o", out / "x.onnx")
    error_line(result, "'pool_inputs'", "another version")
    assert_nothing_written(out)


def test_export_unknown_quantization(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = invoke("export", trained_run / "last.pt", "-o", out / "x.onnx", "--quantize", "int4")
    error_line(result, "--quantize", "int4")
    assert_nothing_written(out)


def test_export_refuses_two_precisions(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    args = ("--fp16", "--quantize", "int8")
    result = invoke("export", trained_run / "last.pt", "-o", out / "x.onnx", *args)
    error_line(result, "--fp16", "--quantize int8", "pick one")
    assert_nothing_written(out)


def test_export_missing_heldout_text(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    missing = tmp_path / "nowhere.txt"
    result = invoke("export", trained_run / "last.pt", "-o", out / "x.onnx", "--heldout", missing)
    error_line(result, str(missing), "does not exist")
    assert_nothing_written(out)


# --------------------------------------------------------------------------------------
# infer generate options
# --------------------------------------------------------------------------------------


def test_generate_prompt_character_outside_vocabulary(tiny_model: Path) -> None:
    result = invoke("infer", "generate", tiny_model, "--prompt", "the €lord", "--seed", "1")
    error_line(result, "'€'", "U+20AC", "position 4", "--unknown skip")


def test_generate_unknown_skip_succeeds(tiny_model: Path) -> None:
    args = ["--prompt", "the €lord", "--seed", "1", "--max-new-tokens", "10", "--unknown", "skip"]
    result = succeeded(invoke("infer", "generate", tiny_model, *args))
    assert result.stdout.startswith("the €lord")
    assert len(result.stdout) == len("the €lord") + 10 + 1  # prompt, 10 new, newline


@pytest.mark.parametrize(
    ("option", "value"),
    [("--temperature", "-1"), ("--top-k", "-2"), ("--top-p", "0"), ("--max-new-tokens", "-1")],
)
def test_generate_bad_sampling_option(option: str, value: str, tiny_model: Path) -> None:
    result = invoke("infer", "generate", tiny_model, "--prompt", "the", option, value)
    error_line(result, option)


def test_generate_bad_device(tiny_model: Path) -> None:
    result = invoke("infer", "generate", tiny_model, "--prompt", "the", "--device", "tpu")
    error_line(result, "--device", "tpu")


@pytest.mark.parametrize(
    "args",
    [
        ["--prompt", "the €lord"],
        ["--prompt", "the", "--temperature", "-1"],
        ["--prompt", "the", "--unknown", "ignore"],
    ],
    ids=["unknown-char", "negative-temperature", "bad-unknown-policy"],
)
def test_generate_error_writes_nothing_to_stdout(args: list[str], tiny_model: Path) -> None:
    # A refused prompt or option must not leave a half answer (the echoed prompt) on stdout.
    result = invoke("infer", "generate", tiny_model, *args, "--max-new-tokens", "5")
    error_line(result)
    assert result.stdout == ""


# --------------------------------------------------------------------------------------
# Happy paths
# --------------------------------------------------------------------------------------


def test_inspect_json(tiny_model: Path) -> None:
    result = succeeded(invoke("inspect", tiny_model, "--json"))
    info = json.loads(result.stdout)
    assert info["manifest"]["task"] == "language-model"
    assert info["manifest"]["architecture"]["cell"] == "lstm"
    assert info["size_bytes"] == tiny_model.stat().st_size
    assert "CPUExecutionProvider" in info["providers_available"]


def test_inspect_table(tiny_model: Path) -> None:
    result = succeeded(invoke("inspect", tiny_model))
    assert "language-model" in result.stdout


def generate(tiny_model: Path, *args: str) -> str:
    result = succeeded(invoke("infer", "generate", tiny_model, "--prompt", "the lord", *args))
    assert result.stdout.startswith("the lord")
    assert result.stdout.endswith("\n")
    return result.stdout


def test_generate_same_seed_same_text(tiny_model: Path) -> None:
    first = generate(tiny_model, "--seed", "5", "--max-new-tokens", "40")
    second = generate(tiny_model, "--seed", "5", "--max-new-tokens", "40")
    assert first == second
    assert len(first) == len("the lord") + 40 + 1


def test_generate_different_seed_different_text(tiny_model: Path) -> None:
    first = generate(tiny_model, "--seed", "5", "--max-new-tokens", "40")
    other = generate(tiny_model, "--seed", "6", "--max-new-tokens", "40")
    assert first != other


def test_generate_json(tiny_model: Path) -> None:
    result = succeeded(
        invoke("infer", "generate", tiny_model, "--prompt", "the", "--seed", "5", "--json")
    )
    data = json.loads(result.stdout)
    assert data["prompt"] == "the"
    assert isinstance(data["text"], str) and data["text"]


def continuation(tiny_model: Path, *args: str) -> str:
    """The generated text alone (no prompt echo, no final newline)."""
    return generate(tiny_model, *args)[len("the lord") : -1]


def pick_stop(text: str) -> tuple[str, int]:
    """A two-character stop string of `text` and where it first occurs (as late as ≥ 3)."""
    for start in range(3, len(text) - 2):
        stop = text[start : start + 2]
        if text.find(stop) == start:
            return stop, start
    stop = text[3:5]
    return stop, text.find(stop)


@pytest.mark.parametrize(
    "args",
    [["--temperature", "0"], ["--seed", "5"]],
    ids=["greedy", "seeded"],
)
def test_generate_stop_ends_before_stop_string(args: list[str], tiny_model: Path) -> None:
    full = continuation(tiny_model, *args, "--max-new-tokens", "40")
    assert len(full) == 40
    stop, index = pick_stop(full)
    stopped = continuation(tiny_model, *args, "--max-new-tokens", "40", "--stop", stop)
    assert stopped == full[:index]
    assert stop not in stopped


def test_generate_stop_that_never_occurs_changes_nothing(tiny_model: Path) -> None:
    full = continuation(tiny_model, "--seed", "5", "--max-new-tokens", "40")
    same = continuation(tiny_model, "--seed", "5", "--max-new-tokens", "40", "--stop", "€€")
    assert same == full


def test_eval_json(tiny_model: Path, corpus: Path) -> None:
    result = succeeded(invoke("eval", tiny_model, "--text", corpus, "--json"))
    metrics = json.loads(result.stdout)
    assert metrics["bpc"] > 0
    assert metrics["chars"] > 0
    assert metrics["perplexity"] > 1


def test_eval_tail_scores_fewer_characters(tiny_model: Path, corpus: Path) -> None:
    whole = json.loads(succeeded(invoke("eval", tiny_model, "--text", corpus, "--json")).stdout)
    tail = json.loads(
        succeeded(invoke("eval", tiny_model, "--text", corpus, "--tail", "0.1", "--json")).stdout
    )
    assert 0 < tail["chars"] < whole["chars"]


def test_eval_tail_warmup_reads_the_text_before_the_tail(tiny_model: Path, corpus: Path) -> None:
    """With --warmup the tail's slices start after the text before them; the tail is scored
    whole (its first character too), so the counts differ from a tail read alone."""
    args = ("eval", tiny_model, "--text", corpus, "--tail", "0.1", "--json")
    alone = json.loads(succeeded(invoke(*args)).stdout)
    warm = json.loads(succeeded(invoke(*args, "--warmup", "300")).stdout)
    assert (alone["warmup_chars"], warm["warmup_chars"]) == (0, 300)
    assert warm["chars"] + warm["unscored_chars"] == alone["chars"] + alone["unscored_chars"] + 1
    assert warm["bpc"] != alone["bpc"]
