"""`rnnedge web`: serve the browser example (examples/web) on 127.0.0.1.

The page and its onnxruntime-web files live in the repository, not in the wheel, so this
serves a checkout's root. Every response carries the cross-origin isolation headers
(COOP/COEP), which browsers require before wasm may use more than one thread.
"""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rnnedge.errors import InputError

PAGE = Path("examples") / "web"
WASM = PAGE / "node_modules" / "onnxruntime-web"


class IsolatedHandler(SimpleHTTPRequestHandler):
    """Static files with the headers that make the page cross-origin isolated."""

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: requests are not the user's business."""


def check_root(root: Path) -> None:
    """One line naming what is missing when `root` cannot serve the page."""
    if not (root / PAGE / "index.html").is_file():
        raise InputError(
            f"{str(root)!r} has no {PAGE}/index.html: the page ships in the rnnedge repository, "
            "not in the wheel; run from a checkout or pass --root CHECKOUT"
        )
    if not (root / WASM).is_dir():
        raise InputError(
            f"onnxruntime-web is not installed for the page: cd {root / PAGE} && npm install"
        )


def make_server(root: Path, port: int) -> ThreadingHTTPServer:
    """A server for `root` on 127.0.0.1:`port` (0 picks a free port); not yet serving."""
    check_root(root)
    handler = functools.partial(IsolatedHandler, directory=str(root))
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise InputError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick --port"
        ) from None


def page_url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{PAGE.as_posix()}/"
