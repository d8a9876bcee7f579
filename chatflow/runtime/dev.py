"""`chatflow dev`: the whole service on one machine, in one command.

Starts (unless the environment points at existing ones) an embedded Temporal dev server and an
embedded Valkey, both keeping their data in the data folder, then the worker and the web app in
this process. On Ctrl-C or SIGTERM it stops the web app and the worker, then the servers it
started; see `chatflow.runtime.processes` for why nothing outlives it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from chatflow.domain.config import Config
from chatflow.runtime.embedded import start_temporal, start_valkey
from chatflow.runtime.processes import ChildProcess, choose_port
from chatflow.runtime.serve import Say, bind_web, stop_on_signals, unless_stopped, until_any_ends
from chatflow.runtime.services import Services, check_redis, load_flows

DEFAULT_PORT = 8000
DEFAULT_TEMPORAL_PORT = 7233
DEFAULT_UI_PORT = 8233
DEFAULT_REDIS_PORT = 6379
SERVER_HOST = "127.0.0.1"  # the embedded servers are for this machine only


@dataclass
class DevOptions:
    host: str = "127.0.0.1"
    port: int | None = None  # None: the default, or a free one when it is taken
    data_dir: Path = Path(".chatflow")
    temporal_port: int | None = None
    ui_port: int | None = None
    redis_port: int | None = None
    source: str = "chatflow.toml"


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
    flows = load_flows(config, source=options.source)
    data_dir = options.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    started = _Started()
    stop = asyncio.Event()
    stop_on_signals(stop, on_second=started.kill)
    sock = bind_web(options.host, choose_port(options.host, options.port, DEFAULT_PORT))
    settings = config.settings
    lines: list[str] = []
    try:
        if settings.temporal_address:
            lines.append(f"  Temporal      {settings.temporal_address} (CHATFLOW_TEMPORAL_ADDRESS)")
        else:
            say("starting Temporal dev server ...")
            temporal = await started.embed(
                start_temporal(
                    data_dir,
                    SERVER_HOST,
                    choose_port(SERVER_HOST, options.temporal_port, DEFAULT_TEMPORAL_PORT),
                    choose_port(SERVER_HOST, options.ui_port, DEFAULT_UI_PORT),
                ),
                stop,
            )
            if temporal is None:
                return
            settings.temporal_address = temporal.address
            lines.append(f"  Temporal      {temporal.address} (embedded, data in {temporal.db_path})")
            lines.append(f"  Temporal UI   {temporal.ui_url}")
        if settings.redis_url:
            lines.append(f"  Redis         {settings.redis_url} (CHATFLOW_REDIS_URL)")
        else:
            say("starting Valkey ...")
            redis_port = choose_port(SERVER_HOST, options.redis_port, DEFAULT_REDIS_PORT)
            valkey = await started.embed(start_valkey(data_dir, SERVER_HOST, redis_port), stop)
            if valkey is None:
                return
            settings.redis_url = valkey.url
            lines.append(f"  Redis         {valkey.url} (embedded Valkey, data in {valkey.data_dir})")
        services = await Services.start(config, flows)
        try:
            await check_redis(services.redis)
            web = f"http://{_visible(options.host)}:{sock.getsockname()[1]}"
            say(_banner(config, web, lines))
            await until_any_ends(stop, services.serve_web(sock, stop), services.run_worker(stop))
        finally:
            await services.aclose()
    finally:
        sock.close()
        if started.children:
            say("stopping ...")
            await asyncio.to_thread(started.stop)
        say("stopped")


def _visible(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _banner(config: Config, web: str, lines: list[str]) -> str:
    console = next((b for b in config.numbers if b.provider == "console"), None)
    out = ["", "chatflow dev is running", *lines, f"  Web app       {web}"]
    out += [f"  Health        {web}/healthz  {web}/readyz", f"  Metrics       {web}/metrics"]
    if console is not None:
        out += [
            f"  Chat          chatflow chat {console.flow} --url {web}",
            f"  curl          curl -X POST {web}/console/messages -H 'content-type: application/json' "
            f"-d '{{\"from\": \"+14155550100\", \"to\": \"{console.number}\", \"text\": \"hi\"}}'",
            f"                curl '{web}/console/messages?customer=%2B14155550100'",
        ]
    out += ["Press Ctrl-C to stop.", ""]
    return "\n".join(out)
