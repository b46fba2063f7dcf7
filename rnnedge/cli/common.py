"""What every command shares: the error-to-exit group, the apps, option types, helpers.

Results go to stdout (generated text as plain flushed writes, so pipes work); progress,
logs and errors go to stderr. A user mistake is one line on stderr and exit code 1, never
a traceback; Ctrl-C exits 130 and a closed pipe ends quietly.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from rnnedge.errors import RnnedgeError
from rnnedge.render import stderr


class RnnedgeGroup(TyperGroup):
    """Turns library errors, Ctrl-C and broken pipes into clean exits for every subcommand."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RnnedgeError as exc:
            stderr.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            stderr.print("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): stop quietly, and keep Python from
            # complaining when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None


def new_app(help_text: str) -> typer.Typer:
    return typer.Typer(
        cls=RnnedgeGroup,
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
    )


app = new_app("Recurrent models from PyTorch training to stateful ONNX graphs on onnxruntime.")
train_app = new_app("Train a model (needs the `train` extra: torch).")
infer_app = new_app("Run a model with onnxruntime (no torch).")
app.add_typer(train_app, name="train")
app.add_typer(infer_app, name="infer")

ModelArg = Annotated[
    str | None,
    typer.Argument(
        help="An .onnx file or a shipped model's name (`rnnedge models`); default: the "
        "shipped KJV char-LSTM, or $RNNEDGE_MODEL",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
ScheduleOpt = Annotated[str, typer.Option(help="none or cosine (decay to 5 % of the peak).")]
PrecisionOpt = Annotated[str, typer.Option(help="fp32 or bf16 (autocast).")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        help="onnxruntime intra-op threads (default: $RNNEDGE_THREADS, else 1 for one stream "
        "or input and up to 4 cores for batches)."
    ),
]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def note_precision(runtime: Any) -> None:
    """One stderr line when --device auto chose between CUDA and the CPU (which one, and
    why not CUDA), and one when the file's precision does not suit the provider running it."""
    if runtime.loaded.device_note:
        stderr.print(f"note: {runtime.loaded.device_note}", soft_wrap=True, markup=False)
    mismatch = runtime.precision_mismatch()
    if mismatch:
        stderr.print(f"note: {mismatch}")


def require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise RnnedgeError("this command needs torch: pip install 'rnnedge[train]'") from None
