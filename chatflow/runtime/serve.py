"""The long-running processes: `chatflow web` and `chatflow worker`, and how they stop.

SIGINT and SIGTERM ask for a graceful stop (the web app finishes its requests, the worker its
tasks); a second signal stops at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from prometheus_client import start_http_server

import providers
from chatflow.domain.channel import specs_by_name
from chatflow.domain.config import Config
from chatflow.domain.errors import StartupError
from chatflow.runtime.processes import bind
from chatflow.runtime.services import Services, check_redis, load_flows

T = TypeVar("T")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
Say = Callable[[str], None]


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop when it is installed (a dependency, except on Windows).

    uvicorn picks uvloop by itself only when it creates the event loop (`uvicorn.run`); our
    processes create it first, so without this the web app and the worker run on asyncio's own
    loop, whose per-callback cost shows at hundreds of webhooks a second.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def stop_on_signals(stop: asyncio.Event, on_second: Callable[[], None] = lambda: None) -> None:
    loop = asyncio.get_running_loop()

    def _handle() -> None:
        if stop.is_set():
            on_second()
            os._exit(130)
        stop.set()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, _handle)


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """`work`'s result, or None when `stop` is set first (the work is then cancelled)."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if task.done():
        return task.result()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return None


async def until_any_ends(stop: asyncio.Event, *services: Awaitable[None]) -> None:
    """Run the services together; when one ends (stop set, or a crash) the others stop too."""

    async def _run(service: Awaitable[None]) -> None:
        try:
            await service
        finally:
            stop.set()

    results = await asyncio.gather(*(_run(s) for s in services), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def bind_web(host: str, port: int) -> socket.socket:
    try:
        return bind(host, port)
    except OSError as error:
        raise StartupError(f"cannot listen on {host}:{port} ({error.strerror}); pass --port") from None


def check_web(config: Config) -> None:
    """`chatflow web` fails closed: StartupError (one line) for what would leave it open to anyone."""
    settings = config.settings
    if not settings.api_key:
        raise StartupError(
            "CHATFLOW_API_KEY is not set: chatflow web serves the dashboard and the journeys API only behind a key "
            "(set it to a long random string; `chatflow dev` makes one by itself)"
        )
    if not settings.public_url:
        specs = specs_by_name(providers.CHANNELS)
        signing = sorted({b.provider for b in config.numbers if b.provider in specs and specs[b.provider].signs_url})
        if signing:
            raise StartupError(
                f"CHATFLOW_PUBLIC_URL is not set: {', '.join(signing)} signs the URL it calls, which would otherwise "
                "be read from the request's Host header, which any client chooses (set it to the https URL the "
                "provider calls, e.g. https://chat.example.com)"
            )


def trusted_proxies(text: str) -> list[str]:
    """CHATFLOW_TRUSTED_PROXIES: addresses or networks, comma-separated; StartupError for a bad one."""
    proxies = [part.strip() for part in text.split(",") if part.strip()]
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise StartupError(
                f"CHATFLOW_TRUSTED_PROXIES: {proxy!r} is not an address or network (e.g. 10.0.0.0/8,192.0.2.7)"
            ) from None
    return proxies


async def web_main(
    config: Config,
    host: str,
    port: int,
    say: Say,
    *,
    source: str,
    console: bool = False,
    proxies: Sequence[str] = (),
) -> None:
    check_web(config)
    flows = load_flows(config, source=source)  # the web app routes to flows: refuse unknown ones early
    stop = asyncio.Event()
    stop_on_signals(stop)
    sock = bind_web(host, port)
    services = await Services.start(config, flows, lazy=True)
    served = "console channel behind the API key" if console else "console channel off"
    say(f"chatflow web on http://{host}:{sock.getsockname()[1]}  ({served}; Ctrl-C to stop)")
    try:
        await services.serve_web(sock, stop, console="key" if console else "off", trusted_proxies=proxies)
    finally:
        await services.aclose()


async def worker_main(
    config: Config, metrics_port: int | None, say: Say, *, source: str, metrics_host: str = "0.0.0.0"
) -> None:
    flows = load_flows(config, source=source)
    stop = asyncio.Event()
    stop_on_signals(stop)
    services = await Services.start(config, flows)
    await check_redis(services.redis)
    if metrics_port is not None:
        start_http_server(metrics_port, addr=metrics_host)
        say(f"metrics on http://{metrics_host}:{metrics_port}/metrics")
    names = ", ".join(sorted({flow.key() for flow in flows}))
    say(f"chatflow worker on {services.client.service_client.config.target_host}: {names}  (Ctrl-C to stop)")
    try:
        await services.run_worker(stop)
    finally:
        await services.aclose()
