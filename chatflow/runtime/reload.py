"""`chatflow dev --reload`: edit a flow, save, and the next answer comes from the new code.

The flow modules (and the packages they are in), their compiled catalogues and the config file are
watched (watchfiles). On a change the new code is loaded first, in this process: a mistake in it
is one `error:` line and the running code stays. Then the conversations still running on a changed flow are replayed
against the new code (the replay check, `chatflow.temporal.replay`), and those the change would
break are named in a warning: their next step would fail on any worker. Then the web app and
the worker are restarted on the new code; Temporal and Valkey, and so the conversations and the
console's messages, stay as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change, awatch

from chatflow.domain.addresses import mask_addresses
from chatflow.domain.config import Config
from chatflow.domain.errors import ChatflowError, StartupError
from chatflow.flows.flow import Flow
from chatflow.runtime.processes import ChildProcess
from chatflow.runtime.services import Services
from chatflow.temporal.constants import CONVERSATION_WORKFLOW
from chatflow.temporal.replay import prepared, replay_histories
from chatflow.temporal.search_attributes import FLOW

Say = Callable[[str], None]
REPLAY_LIMIT = 100  # running conversations of a changed flow checked at most, newest first
logging.getLogger("watchfiles").setLevel(logging.WARNING)  # not a line per change: ours say what changed


@dataclass
class Generation:
    """The web app and the worker, on one version of the code."""

    config: Config
    flows: list[type[Flow]]
    services: Services
    worker: ChildProcess


class Watched:
    """The files whose change reloads: the config and the flow modules, their packages whole."""

    def __init__(self, config_file: str, modules: Iterable[str]) -> None:
        self.files = {Path(config_file).resolve()}
        self.folders: set[Path] = set()
        for name in modules:
            file = getattr(sys.modules.get(name), "__file__", None)
            if not file:
                continue
            path = Path(file).resolve()
            if path.name == "__init__.py":
                self.folders.add(path.parent)
            else:
                self.files.add(path)
                # Its flows' compiled catalogues (`chatflow i18n compile`), read as a worker starts.
                if (path.parent / "locales").is_dir():
                    self.folders.add(path.parent / "locales")

    def roots(self) -> list[Path]:
        return sorted({*self.folders, *(f.parent for f in self.files)})

    def __contains__(self, path: Path) -> bool:
        return path in self.files or any(folder in path.parents for folder in self.folders)

    def forget_modules(self) -> None:
        """Drop the watched modules from the import cache, so loading the flows imports them anew."""
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if file and Path(file).resolve() in self:
                del sys.modules[name]

    def wanted(self, _: Change, path: str) -> bool:
        resolved = Path(path).resolve()
        return resolved.suffix in (".py", ".toml", ".mo") and resolved in self

    async def changes(self, stop: asyncio.Event, queue: asyncio.Queue[list[Path]]) -> None:
        """Put each batch of changed files in `queue` until `stop`. A file is watched through its
        folder (an editor may save by renaming a new file over it, which a watch on the file
        itself would miss), not recursively: beside chatflow.toml is the data folder, busy."""
        folders = sorted(self.folders - {f.parent for f in self.files})
        parents = sorted({f.parent for f in self.files})

        async def watch(roots: list[Path], recursive: bool) -> None:
            if not roots:
                return
            async for batch in awatch(*roots, stop_event=stop, recursive=recursive, watch_filter=self.wanted):
                queue.put_nowait(sorted({Path(path).resolve() for _, path in batch}))

        await asyncio.gather(watch(folders, True), watch(parents, False))


async def serve_reloading(
    first: Generation,
    *,
    sock: socket.socket,
    stop: asyncio.Event,
    say: Say,
    watched: Watched,
    load: Callable[[], tuple[Config, list[type[Flow]]]],
    start: Callable[[Config, list[type[Flow]]], Awaitable[Generation]],
) -> None:
    """Serve `first` until `stop`; on each change of a watched file, the next generation (which
    `start` makes, its worker among the processes the caller stops). The caller closes `first`'s
    services; those of later generations are closed here."""
    changes: asyncio.Queue[list[Path]] = asyncio.Queue()
    watcher = asyncio.create_task(watched.changes(stop, changes))
    current = first
    try:
        while True:
            generation_stop = asyncio.Event()
            # A duplicate of the listening socket: uvicorn closes the one it is given when it
            # stops, and connections arriving meanwhile wait in the kernel's backlog.
            web = asyncio.create_task(current.services.serve_web(sock.dup(), generation_stop))
            worker = asyncio.create_task(_worker_exit(current.worker, generation_stop))
            loaded = None
            while loaded is None:
                changed = asyncio.create_task(changes.get())
                stopping = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait({web, worker, changed, stopping}, return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                stopping.cancel()
                if web in done or worker in done or stop.is_set():
                    generation_stop.set()
                    await web  # its crash, or the worker's, ends chatflow dev as without --reload
                    await worker
                    return
                loaded = await _load(current, changed.result(), say, watched, load)
            generation_stop.set()
            await web
            await worker
            await asyncio.to_thread(current.worker.stop)
            if current is not first:
                await current.services.aclose()
            current = await start(*loaded)
            say(
                f"reloaded: flows {', '.join(sorted({flow.key() for flow in loaded[1]}))}; worker pid {current.worker.pid}"
            )
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        if current is not first:
            await current.services.aclose()


async def _worker_exit(worker: ChildProcess, stop: asyncio.Event) -> None:
    """Until `stop`; a worker that ends by itself is an error (its lines say why)."""
    while not stop.is_set():
        if not worker.running():
            raise StartupError(f"the worker stopped (exit code {worker.process.returncode}); its lines above say why")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await stop.wait()


async def _load(
    current: Generation,
    changed: list[Path],
    say: Say,
    watched: Watched,
    load: Callable[[], tuple[Config, list[type[Flow]]]],
) -> tuple[Config, list[type[Flow]]] | None:
    """The new config and flows, checked against the running conversations; None (the current
    code runs on) when they cannot load."""
    say(f"reloading: {', '.join(_shown(path) for path in changed)} changed")
    watched.forget_modules()
    try:
        config, flows = load()
    except ChatflowError as error:
        say(f"error: {error}")
        say("  (still running the code from before; save a fix to reload)")
        return None
    try:
        await warn_of_broken(current.services, flows, say)
    except Exception as error:  # noqa: BLE001 - the check is advice: the reload goes on without it
        say(f"warning: the replay check could not run ({type(error).__name__}: {error})")
    return config, flows


async def warn_of_broken(services: Services, flows: list[type[Flow]], say: Say) -> list[str]:
    """Replay the conversations running on these flows' versions against them; warn naming
    those the new code would break. Their ids (masked), for the tests."""
    client = services.client
    codec = client.data_converter.payload_codec
    histories = []
    # Every version's: one the new code no longer has would stall, which the replay says too.
    for name in sorted({flow.name for flow in flows}):
        query = f"WorkflowType = '{CONVERSATION_WORKFLOW}' AND ExecutionStatus = 'Running' AND {FLOW.name} = '{name}'"
        async for execution in client.list_workflows(query, limit=REPLAY_LIMIT):
            history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
            histories.append((execution.id, await prepared(history, codec, redact=None)))
    if not histories:
        return []
    broken = sorted({mask_addresses(failure.history) for failure in await replay_histories(histories, flows)})
    if broken:
        say(
            f"warning: this change breaks {len(broken)} running conversation(s), which would fail at their next "
            f"step: {', '.join(broken)}. To keep them, undo it and give the changed flow `version = ...` one "
            "higher, keeping the old class (README: Changing a flow safely)"
        )
    return broken


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)
