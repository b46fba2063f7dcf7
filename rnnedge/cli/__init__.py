"""The `rnnedge` command line: a package of thin commands.

Each command parses its options, calls one library function and renders the result
(``rnnedge.render``); library errors are typed and become one line on stderr (see
``common.RnnedgeGroup``). One module per command group: ``train``, ``export``, ``infer``,
``tools`` (inspect, eval, bench, doctor, models), ``serve`` (triton, serve).
"""

from __future__ import annotations

from rnnedge.cli import export, infer, serve, tools, train  # noqa: F401  (registers the commands)
from rnnedge.cli.common import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
