"""Starting or joining a Ray cluster the same way for `rnnedge serve` and bulk classification.

Ray reaches out to report usage and to find its own IP unless told not to: usage stats are
off, the node address is given (127.0.0.1 by default), the dashboard is not started.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rnnedge.errors import DependencyError

NODE_IP = "127.0.0.1"


def import_ray() -> Any:
    """The `ray` module with usage stats off, or a one-line error naming the extra."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        import ray
    except ImportError:
        raise DependencyError("this command needs Ray: pip install 'rnnedge[serve]'") from None
    return ray


def init_ray(address: str | None = None, node_ip: str = NODE_IP, cpus: int | None = None) -> Any:
    """Join the cluster at `address`, or start a local one bound to `node_ip`; returns ray."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"_node_ip_address": node_ip, "log_to_driver": False}
    if address:
        ray.init(address=address, **options)
    else:
        # One logical CPU more than cores: Ray Data's read tasks need a CPU beside the
        # classifier actors, which take one each (else reading waits for ever).
        cpus = cpus or (os.cpu_count() or 1) + 1
        # address="local": always a fresh cluster. Without it Ray joins whatever
        # /tmp/ray/ray_current_cluster names (a `ray start` left over on this machine).
        ray.init(address="local", include_dashboard=False, num_cpus=cpus, **options)
    return ray


def portable_ref(ref: str) -> str:
    """What a worker on another node should open: a shipped name stays a name (it resolves
    inside the wheel there); a file becomes its absolute path (same path on every node)."""
    from rnnedge.runtime.catalog import resolve_model

    path = resolve_model(ref)
    return str(path) if Path(ref).exists() else ref
