"""`rnnedge serve` from the command line: check the options, start, wait for Ctrl-C, stop."""

from __future__ import annotations

import signal
import time

from rnnedge.errors import InputError
from rnnedge.render import stderr
from rnnedge.serve.requests import Limits


def serve_forever(
    models: list[str],
    host: str,
    port: int,
    address: str | None,
    node_ip: str,
    replicas: int,
    limits: Limits,
    device: str,
    threads: int | None,
) -> None:
    """Deploy `models` and block until interrupted (the CLI turns Ctrl-C into exit 130)."""
    from rnnedge.runtime.catalog import read_manifest, resolve_model
    from rnnedge.serve.cluster import import_ray, portable_ref

    if replicas < 1 or limits.max_streams < 1 or not 0 < port < 65536 or limits.flush_ms < 0:
        raise InputError(
            "--replicas and --max-streams must be at least 1, --port in 1..65535, "
            "--flush-ms at least 0"
        )
    for ref in models:
        read_manifest(resolve_model(ref))  # an unknown or broken file fails here, in one line
    import_ray()
    from rnnedge.serve import app

    url = app.start(
        [portable_ref(ref) for ref in models],
        host,
        port,
        address,
        node_ip,
        limits=limits,
        replicas=replicas,
        device=device,
        threads=threads,
    )
    stderr.print(f"serving {', '.join(models)} on {url} (Ctrl-C stops)")
    # Started in the background (`&`), a shell ignores SIGINT for us: `kill -INT PID` stops too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while True:
            time.sleep(3600)
    finally:
        app.stop()
