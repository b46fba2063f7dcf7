"""Adapters to serving engines, thin over the runtime: a Triton model repository
(``triton``), an HTTP server with continuous batching on Ray Serve (``app``, ``batcher``),
and bulk classification on Ray Data (``bulk``).

Each engine is an optional extra (``triton``, ``serve``); importing this package imports
none of them, and a missing one is a one-line ``DependencyError`` naming the extra.
"""

from __future__ import annotations
