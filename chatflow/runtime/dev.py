"""`chatflow dev`: the whole service on one machine, in one command.

Starts (unless the environment points at existing ones) an embedded Temporal dev server and an
embedded Valkey, both keeping their data in the data folder, then the worker (`chatflow worker`,
a process of its own, writing to this terminal) and the web app in this process: the same two
processes as in production. In one process they shared one interpreter lock, and a burst of
new conversations held webhooks back behind the worker's work (acknowledgement p99 at 100 new
customers a second: 114 to 246 ms in one process, 12 to 29 ms in two; docs/benchmarks.md).
On Ctrl-C or SIGTERM it stops the web app, then the worker (sends in flight finish), then the
servers it started; see `chatflow.runtime.processes` for why nothing outlives it.

Every flow can be chatted with: a flow the config binds to no console number gets one from a
reserved range (`+1500555xxxx`, Twilio's test numbers, never a customer's), the same one every
time. Without CHATFLOW_API_KEY the journeys API gets a random key, kept in the data folder. The
web app's URL, Temporal's and Redis's addresses and where the API key is go to
`<data folder>/dev.json` while it runs, for `chatflow chat`, `chatflow record` and
`chatflow dead-letters` to find them. The data folder and its files are its owner's only; the
banner never shows a key or a password that came from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import sys
import zlib
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from chatflow.domain.addresses import Address
from chatflow.domain.config import Config, NumberBinding
from chatflow.domain.errors import StartupError
from chatflow.flows.flow import Flow
from chatflow.runtime.config import check_secrets
from chatflow.runtime.embedded import start_temporal, start_valkey
from chatflow.runtime.mail import catch_mail
from chatflow.runtime.processes import ChildProcess, choose_port, folder_lock, free_port
from chatflow.runtime.serve import Say, bind_web, stop_on_signals, unless_stopped, until_any_ends
from chatflow.runtime.services import Services, check_redis, load_flows
from chatflow.temporal.constants import WORKER_SHUTDOWN_GRACE

DEFAULT_PORT = 8000
DEFAULT_TEMPORAL_PORT = 7233
DEFAULT_UI_PORT = 8233
DEFAULT_REDIS_PORT = 6379
SERVER_HOST = "127.0.0.1"  # the embedded servers are for this machine only
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_DATA_DIR = Path(".chatflow")
# Console numbers chatflow dev binds by itself: Twilio's test range, which no customer can have.
RESERVED_PREFIX = "+1500555"
RESERVED_FIRST, RESERVED_COUNT = 1000, 9000  # +15005551000 ... +15005559999
STATE_FILE = "dev.json"
API_KEY_FILE = "api-key"


def console_bindings(config: Config, flows: Iterable[type[Flow]]) -> list[NumberBinding]:
    """A console number for each flow the config binds to none: the same number for the same
    flow name every time (conversations in the data folder stay on it across restarts)."""
    bound = {b.flow for b in config.numbers if b.provider == "console"}
    taken = {b.number for b in config.numbers}
    added: list[NumberBinding] = []
    for name in sorted({flow.name for flow in flows} - bound):
        slot = zlib.crc32(name.encode()) % RESERVED_COUNT
        number = f"{RESERVED_PREFIX}{RESERVED_FIRST + slot}"
        while number in taken:
            slot = (slot + 1) % RESERVED_COUNT
            number = f"{RESERVED_PREFIX}{RESERVED_FIRST + slot}"
        taken.add(number)
        added.append(NumberBinding(Address("console", number), provider="console", channel="console", flow=name))
    return added


def dev_api_key(data_dir: Path) -> str:
    """The journeys API key of this data folder: made once, kept readable by its owner only."""
    path = data_dir / API_KEY_FILE
    with contextlib.suppress(OSError):
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
    key = secrets.token_urlsafe(18)
    write_private(path, key + "\n")
    return key


def write_private(path: Path, text: str) -> None:
    """`text` in a file only its owner may read (0600), whatever the umask or the file was before."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


# What chatflow dev keeps in its data folder: a folder holding one of them is one of ours.
DATA_FILES = ("temporal.db", "valkey", API_KEY_FILE, STATE_FILE)


def private_folder(data_dir: Path) -> None:
    """The data folder, readable by its owner only (0700): conversations, customers' numbers and
    the console's messages are in there (Temporal's database, Valkey's files).

    A folder chatflow dev made before it made them private is made private too; any other folder
    given as --data-dir is left as it is (it may be shared, or not ours)."""
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=0o700)
    elif any((data_dir / name).exists() for name in DATA_FILES):
        data_dir.chmod(0o700)


def without_password(url: str) -> str:
    """`url` as it may be shown: its password (Redis's, say) replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def running_dev(data_dir: Path = DEFAULT_DATA_DIR) -> dict[str, Any] | None:
    """What a `chatflow dev` running on `data_dir` wrote about itself (web URL, Temporal and Redis
    addresses, the API key's file), or None when none runs there."""
    try:
        state = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
        os.kill(int(state["pid"]), 0)  # still running? (a killed dev leaves its file behind)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if isinstance(state, dict) else None


@dataclass
class DevOptions:
    host: str = "127.0.0.1"
    port: int | None = None  # None: the default, or a free one when it is taken
    data_dir: Path = DEFAULT_DATA_DIR
    temporal_port: int | None = None
    ui_port: int | None = None
    redis_port: int | None = None
    source: str = "chatflow.toml"
    log_json: bool = False  # passed on to the worker's process
    log_level: str = "info"
    reload: bool = False  # restart the web app and the worker when a flow module or the config changes


class _Embedded(Protocol):
    process: ChildProcess


E = TypeVar("E", bound=_Embedded)


@dataclass
class _Started:
    children: list[ChildProcess] = field(default_factory=list)

    async def embed(self, starting: Awaitable[E], stop: asyncio.Event) -> E | None:
        """Start an embedded server, unless a stop signal comes first; remember it to stop it."""
        server = await unless_stopped(starting, stop)
        if server is not None:
            self.children.append(server.process)
        return server

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()

    def kill(self) -> None:
        for child in self.children:
            child.kill()


async def dev_main(config: Config, options: DevOptions, say: Say) -> None:
    private_folder(options.data_dir.resolve())  # before the lock file is made in it
    with folder_lock(options.data_dir.resolve()):
        await _dev_main(config, options, say)


async def _dev_main(config: Config, options: DevOptions, say: Say) -> None:
    flows = load_flows(config, source=options.source)
    data_dir = options.data_dir.resolve()
    started = _Started()
    stop = asyncio.Event()
    stop_on_signals(stop, on_second=started.kill)
    sock = bind_web(options.host, choose_port(options.host, options.port, DEFAULT_PORT, what="--port"))
    settings = config.settings
    lines: list[str] = []
    added = console_bindings(config, flows)
    config.numbers = [*config.numbers, *added]
    # A key from the environment is never printed: the terminal's scrollback is no place for it.
    key_shown = "from CHATFLOW_API_KEY"
    if not settings.api_key:
        settings.api_key = dev_api_key(data_dir)
        key_shown = f"{settings.api_key} (kept in {data_dir / API_KEY_FILE})"
    state_file = data_dir / STATE_FILE
    try:
        if settings.temporal_address:
            lines.append(f"  Temporal      {settings.temporal_address} (CHATFLOW_TEMPORAL_ADDRESS)")
        else:
            say("starting Temporal dev server ...")
            temporal = await started.embed(
                start_temporal(
                    data_dir,
                    SERVER_HOST,
                    choose_port(SERVER_HOST, options.temporal_port, DEFAULT_TEMPORAL_PORT, what="--temporal-port"),
                    choose_port(SERVER_HOST, options.ui_port, DEFAULT_UI_PORT, what="--ui-port"),
                ),
                stop,
            )
            if temporal is None:
                return
            settings.temporal_address = temporal.address
            with contextlib.suppress(OSError):
                temporal.db_path.chmod(0o600)  # conversations and customers' numbers: the owner's only
            lines.append(f"  Temporal      {temporal.address} (embedded, data in {temporal.db_path})")
            lines.append(f"  Temporal UI   {temporal.ui_url}")
        if settings.redis_url:
            lines.append(f"  Redis         {without_password(settings.redis_url)} (CHATFLOW_REDIS_URL)")
        else:
            say("starting Valkey ...")
            redis_port = choose_port(SERVER_HOST, options.redis_port, DEFAULT_REDIS_PORT, what="--redis-port")
            valkey = await started.embed(start_valkey(data_dir, SERVER_HOST, redis_port), stop)
            if valkey is None:
                return
            settings.redis_url = valkey.url
            lines.append(f"  Redis         {valkey.url} (embedded Valkey, data in {valkey.data_dir})")
        mailbox = await catch_mail(SERVER_HOST, settings)  # None when CHATFLOW_SMTP_URL (or Mailgun) is set
        if mailbox is not None:
            lines.append(f"  Mail          {mailbox.url} (caught: shown on the web app's page and in chatflow chat)")
        check_secrets(config, options.source)
        services = await Services.start(config, flows)
        services.mailbox = mailbox
        try:
            await check_redis(services.redis)
            metrics_port = free_port(SERVER_HOST)
            worker = _start_worker(config, options, metrics_port)
            started.children.append(worker)
            web = f"http://{_visible(options.host)}:{sock.getsockname()[1]}"
            api = f"  Journeys API  {web}/api/conversations  key: {key_shown}"
            worker_metrics = f"http://{SERVER_HOST}:{metrics_port}/metrics"
            state = {
                "pid": os.getpid(),
                "web": web,
                "temporal": settings.temporal_address,
                "redis": settings.redis_url,
                "worker_metrics": worker_metrics,
            }
            if key_shown != "from CHATFLOW_API_KEY":
                state["api_key_file"] = str(data_dir / API_KEY_FILE)  # its path: the key is in one file only
            write_private(state_file, json.dumps(state) + "\n")  # Redis's URL may hold its password
            lines.append(f"  Worker        pid {worker.pid}, metrics {worker_metrics}")
            say(_banner(config, web, lines, api, {b.number for b in added}))
            if options.reload:
                await _serve_reloading(config, flows, services, worker, sock, stop, say, options, started, metrics_port)
            else:
                await until_any_ends(stop, services.serve_web(sock, stop), _watch(worker, stop))
        finally:
            await services.aclose()
            if mailbox is not None:
                await mailbox.stop()
    finally:
        sock.close()
        with contextlib.suppress(OSError):
            state_file.unlink()
        if started.children:
            say("stopping ...")
            await asyncio.to_thread(started.stop)
        say("stopped")


async def _serve_reloading(
    config: Config,
    flows: list[type[Flow]],
    services: Services,
    worker: ChildProcess,
    sock: socket.socket,
    stop: asyncio.Event,
    say: Say,
    options: DevOptions,
    started: _Started,
    metrics_port: int,
) -> None:
    """`--reload`: see `chatflow.runtime.reload`. The servers, the API key and the console
    numbers chatflow dev bound stay; the config file and the flows are read again."""
    from chatflow.runtime.config import load_config
    from chatflow.runtime.reload import Generation, Watched, serve_reloading

    kept = config.settings

    def load() -> tuple[Config, list[type[Flow]]]:
        fresh = load_config(options.source)
        fresh.settings.temporal_address, fresh.settings.redis_url = kept.temporal_address, kept.redis_url
        fresh.settings.api_key = kept.api_key
        fresh_flows = load_flows(fresh, source=options.source)
        fresh.numbers = [*fresh.numbers, *console_bindings(fresh, fresh_flows)]
        return fresh, fresh_flows

    async def start(fresh: Config, fresh_flows: list[type[Flow]]) -> Generation:
        running = await Services.start(fresh, fresh_flows)
        child = _start_worker(fresh, options, metrics_port)
        started.children.append(child)
        return Generation(fresh, fresh_flows, running, child)

    watched = Watched(options.source, config.flow_modules)
    say(f"  --reload: watching {', '.join(str(p) for p in watched.roots())} for changes to the flows and the config")
    await serve_reloading(
        Generation(config, flows, services, worker),
        sock=sock,
        stop=stop,
        say=say,
        watched=watched,
        load=load,
        start=start,
    )


def _start_worker(config: Config, options: DevOptions, metrics_port: int) -> ChildProcess:
    """`chatflow worker` on the same config file and servers, its metrics on this machine only.

    The console numbers chatflow dev binds by itself are not in the file; the worker needs none
    of them (a number's binding gives its sends a rate, and these have none)."""
    env = {
        **os.environ,
        "CHATFLOW_TEMPORAL_ADDRESS": config.settings.temporal_address,
        "CHATFLOW_REDIS_URL": config.settings.redis_url,
        "CHATFLOW_LOG_LEVEL": options.log_level,
    }
    args = [
        sys.executable,
        "-m",
        "chatflow",
        "worker",
        "--config",
        str(Path(options.source).resolve()),
        "--metrics-host",
        SERVER_HOST,
        "--metrics-port",
        str(metrics_port),
    ]
    if options.log_json:
        args.append("--log-json")
    # Sends in flight get the worker's own grace to finish, and a little more to stop.
    return ChildProcess("worker", args, None, env=env, stop_timeout=WORKER_SHUTDOWN_GRACE.total_seconds() + 5)


async def _watch(worker: ChildProcess, stop: asyncio.Event) -> None:
    """Until `stop` is set; a worker that ends by itself stops chatflow dev."""
    while not stop.is_set():
        if not worker.running():
            raise StartupError(f"the worker stopped (exit code {worker.process.returncode}); its lines above say why")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


def _visible(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _banner(config: Config, web: str, lines: list[str], api: str, added: set[str]) -> str:
    out = ["", "chatflow dev is running", *lines, f"  Web app       {web}  (links to everything below)", api]
    out += [f"  Health        {web}/healthz  {web}/readyz", f"  Metrics       {web}/metrics"]
    console = [b for b in config.numbers if b.provider == "console"]
    url = "" if web == DEFAULT_URL else f" --url {web}"
    width = max((len(b.flow) for b in console), default=0)
    for index, binding in enumerate(console):
        how = ", bound by chatflow dev" if binding.number in added else ""
        label = "  Chat          " if index == 0 else " " * 16
        out.append(f"{label}chatflow chat {binding.flow.ljust(width)}{url}   (console number {binding.number}{how})")
    if console:
        first = console[0]
        out += [
            f"  curl          curl -X POST {web}/console/messages -H 'content-type: application/json' "
            f'-d \'{{"from": "+14155550100", "to": "{first.number}", "text": "hi"}}\'',
            f"                curl '{web}/console/messages?customer=%2B14155550100'",
        ]
    out += ["Press Ctrl-C to stop.", ""]
    return "\n".join(out)
