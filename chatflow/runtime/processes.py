"""Child processes of `chatflow dev` and the ports they listen on.

Every child runs in its own session, so a terminal's Ctrl-C reaches only `chatflow dev`, which
then stops things in order (web, worker, then the servers they use). On Linux each child also
asks the kernel for SIGTERM when its parent dies, so even a `kill -9` of `chatflow dev` leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from chatflow.domain.errors import StartupError

PR_SET_PDEATHSIG = 1


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on host:port (port 0: any free one); OSError when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def port_is_free(host: str, port: int) -> bool:
    try:
        bind(host, port).close()
    except OSError:
        return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with contextlib.closing(bind(host, 0)) as sock:
        return int(sock.getsockname()[1])


def choose_port(host: str, requested: int | None, default: int, *, what: str = "port") -> int:
    """The requested port, refused when something already listens there (a server of ours would
    exit and we would talk to whoever holds it); else the default, or any free port when the
    default is taken (another chatflow dev, a local Redis...)."""
    if requested is not None:
        if not port_is_free(host, requested):
            raise StartupError(f"{what} {requested} on {host} is already in use; pass another one or leave it out")
        return requested
    return default if port_is_free(host, default) else free_port(host)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold `folder` for this process alone: two stacks on one data folder would run two
    Temporal servers on one SQLite file."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartupError(
                f"{folder} is in use by another chatflow dev; stop it or pass another --data-dir"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def _in_child() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return _in_child


class ChildProcess:
    """A process `chatflow dev` runs: a server with its output in a log file, or one of ours
    (`log_path` None) writing to the same terminal as `chatflow dev`."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log_path: Path | None,
        cwd: Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.stop_timeout = stop_timeout
        with contextlib.ExitStack() as files:
            log: IO[bytes] | None = None
            if log_path is not None:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log = files.enter_context(open(log_path, "ab"))
            self.process = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log is not None else None,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        if self.log_path is None:
            return ""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (servers flush their data on it, the worker lets sends in flight finish), then
        SIGKILL if it takes longer than `stop_timeout`."""
        if not self.running():
            return
        self.process.terminate()
        try:
            self.process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.running():
            self.process.kill()
            self.process.wait()
