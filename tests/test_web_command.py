"""`rnnedge web`: serves the page from a checkout on 127.0.0.1 with isolation headers, and
says in one line what is missing otherwise. The server runs in a child process stopped by
its PID; every request is bounded by a timeout."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

from helpers import error_line, invoke

ROOT = Path(__file__).resolve().parents[1]


def test_web_serves_the_page_cross_origin_isolated(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    (root / "examples" / "web" / "node_modules" / "onnxruntime-web").mkdir(parents=True)
    (root / "examples" / "web" / "index.html").write_text("<title>rnnedge</title>")
    server = subprocess.Popen(
        [sys.executable, "-m", "rnnedge", "web", "--port", "0", "--root", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/examples/web/")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"<title>rnnedge</title>" in response.read()
            assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    finally:
        server.kill()
        server.wait(timeout=10)


def test_web_outside_a_checkout_is_one_line(tmp_path: Path) -> None:
    error_line(invoke("web", "--root", tmp_path), "examples/web/index.html", "checkout")


def test_web_without_onnxruntime_web_says_how_to_install(tmp_path: Path) -> None:
    (tmp_path / "examples" / "web").mkdir(parents=True)
    (tmp_path / "examples" / "web" / "index.html").write_text("x")
    error_line(invoke("web", "--root", tmp_path), "npm install")
