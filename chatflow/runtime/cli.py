"""The `chatflow` command: dev, web, worker, chat, flows, check, graph, record, codec-server, dead-letters,
templates, i18n.

Mistakes a user can fix (config, ports, an unreachable server) end with `error: ...` on stderr
and exit status 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from redis.asyncio import Redis
from redis.exceptions import RedisError

from chatflow.domain.config import Config
from chatflow.domain.errors import ChatflowError, ConfigError, Refused
from chatflow.flows import i18n
from chatflow.flows.flow import Flow
from chatflow.flows.graph import FORMATS, render
from chatflow.flows.registry import FlowRegistry
from chatflow.flows.window_check import window_findings
from chatflow.runtime.chat import ChatOptions, chat
from chatflow.runtime.config import load_config
from chatflow.runtime.dev import DEFAULT_DATA_DIR, DEFAULT_URL, DevOptions, dev_main, running_dev, without_password
from chatflow.runtime.logs import configure_logging
from chatflow.runtime.services import load_flows

app = typer.Typer(
    help="Conversations by SMS and WhatsApp, as chat flows written in Python.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich markup would swallow "[default: ...]" in help texts and show a type
    # (`<bool>`) beside every flag.
    rich_markup_mode=None,
)

# Every error chatflow raises on purpose is one a user can act on: one line, exit status 2.
USER_ERRORS = (ChatflowError,)

ConfigOption = Annotated[
    str | None,
    typer.Option("--config", "-c", help="Config file [default: $CHATFLOW_CONFIG or ./chatflow.toml]"),
]
HostOption = Annotated[str, typer.Option(help="Address the web app listens on.")]
LogJson = Annotated[
    bool,
    typer.Option("--log-json", envvar="CHATFLOW_LOG_JSON", help="Log JSON lines (phone numbers masked either way)."),
]
LogLevel = Annotated[str, typer.Option(envvar="CHATFLOW_LOG_LEVEL", help="debug, info, warning or error.")]
DataDirOption = Annotated[Path, typer.Option(help="The data folder of the `chatflow dev` to ask.")]


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def say(text: str) -> None:
    typer.echo(text)


def _run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    from chatflow.runtime.serve import run  # uvloop: uvicorn only picks it when it makes the loop

    try:
        run(main())
    except USER_ERRORS as error:
        raise fail(str(error)) from None
    except KeyboardInterrupt:  # a signal before our handlers were installed
        raise typer.Exit(130) from None
    _exit_after_clean_stop()


def _exit_after_clean_stop() -> None:
    """Leave without interpreter finalization once everything has stopped cleanly.

    The Temporal SDK's Rust threads can still touch the GIL while CPython finalizes and abort
    the process (temporalio/sdk-python#300), turning a clean stop into exit code -6.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _config(path: str | None, *, check_secrets: bool = True) -> tuple[Config, str]:
    try:
        config = load_config(path, check_secrets=check_secrets)
    except ConfigError as error:
        raise fail(str(error)) from None
    return config, str(path or "chatflow.toml")


def _registry(path: str | None) -> FlowRegistry:
    config, source = _config(path, check_secrets=False)
    try:
        return FlowRegistry(load_flows(config, source=source))
    except ConfigError as error:
        raise fail(str(error)) from None


@app.command()
def dev(
    config: ConfigOption = None,
    host: HostOption = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Web app port [default: 8000, or a free one if taken]")] = None,
    data_dir: Annotated[Path, typer.Option(help="Where Temporal and Valkey keep their data.")] = DEFAULT_DATA_DIR,
    temporal_port: Annotated[int | None, typer.Option(help="Embedded Temporal port [default: 7233, or free]")] = None,
    ui_port: Annotated[int | None, typer.Option(help="Temporal Web UI port [default: 8233, or free]")] = None,
    redis_port: Annotated[int | None, typer.Option(help="Embedded Valkey port [default: 6379, or free]")] = None,
    log_json: LogJson = False,
    log_level: LogLevel = "info",
    reload: Annotated[
        bool,
        typer.Option(
            "--reload",
            help="Restart the web app and the worker when a flow module or the config changes "
            "(warning of running conversations the change would break).",
        ),
    ] = False,
) -> None:
    """Run everything on this machine: Temporal and Valkey (embedded unless
    CHATFLOW_TEMPORAL_ADDRESS / CHATFLOW_REDIS_URL are set), the worker and the web app."""
    configure_logging(json_lines=log_json, level=log_level)
    # Secrets are checked once dev has started what supplies some (its mail catcher: an email
    # binding needs no CHATFLOW_SMTP_URL here).
    loaded, source = _config(config, check_secrets=False)
    options = DevOptions(host, port, data_dir, temporal_port, ui_port, redis_port, source, log_json, log_level, reload)
    _run(lambda: dev_main(loaded, options, say))


@app.command()
def web(
    config: ConfigOption = None,
    host: HostOption = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port the web app listens on.")] = 8000,
    console: Annotated[
        bool,
        typer.Option("--console", envvar="CHATFLOW_CONSOLE", help="Serve the console channel, behind the API key."),
    ] = False,
    proxies: Annotated[
        str,
        typer.Option(
            "--trusted-proxies",
            envvar="CHATFLOW_TRUSTED_PROXIES",
            help="Addresses whose X-Forwarded-For/-Proto count, comma-separated [default: none]",
        ),
    ] = "",
    log_json: LogJson = False,
    log_level: LogLevel = "info",
) -> None:
    """Run the web app: webhooks, journeys API, dashboard, /healthz, /readyz, /metrics. Needs
    CHATFLOW_API_KEY."""
    from chatflow.runtime.serve import trusted_proxies, web_main

    configure_logging(json_lines=log_json, level=log_level)
    loaded, source = _config(config)
    try:
        trusted = trusted_proxies(proxies)
    except USER_ERRORS as error:
        raise fail(str(error)) from None
    _run(lambda: web_main(loaded, host, port, say, source=source, console=console, proxies=trusted))


@app.command()
def worker(
    config: ConfigOption = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve /metrics on this port.")] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface the metrics port listens on.")] = "0.0.0.0",
    log_json: LogJson = False,
    log_level: LogLevel = "info",
) -> None:
    """Run the Temporal worker: conversations and the activities that send messages."""
    from chatflow.runtime.serve import worker_main

    configure_logging(json_lines=log_json, level=log_level)
    loaded, source = _config(config)
    _run(lambda: worker_main(loaded, metrics_port, say, source=source, metrics_host=metrics_host))


@app.command("chat")
def chat_command(
    flow: Annotated[str, typer.Argument(metavar="FLOW", help="The flow to talk to (bound to a console number).")],
    url: Annotated[
        str | None,
        typer.Option(
            envvar="CHATFLOW_URL",
            help=f"The running web app [default: the `chatflow dev` of --data-dir, else {DEFAULT_URL}]",
        ),
    ] = None,
    customer: Annotated[str, typer.Option("--as", help="Your phone number in the conversation.")] = "+14155550100",
    number: Annotated[
        str | None, typer.Option(help="Console number to write to, whatever flow it has [default: FLOW's]")
    ] = None,
    start: Annotated[
        bool, typer.Option("--start", help="Start FLOW for you first, as a journey (the business's initiative).")
    ] = False,
    data: Annotated[
        str | None, typer.Option(help='The journey\'s data with --start, a JSON object: \'{"name": "Ada"}\'')
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="CHATFLOW_API_KEY",
            help="The journeys API key, for your own lines and --start [default: the running `chatflow dev`'s]",
        ),
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Talk to a flow from the terminal, through a running `chatflow dev` (or `chatflow web`).

    Shows the conversation so far (your lines as `you> `), the bot's messages as they come, and
    how the conversation ended. Ctrl-D ends."""
    running = running_dev(data_dir)
    if url is None:
        url = str(running["web"]) if running else DEFAULT_URL
    if api_key is None and running and running.get("web") == url and running.get("api_key_file"):
        # Only to the dev that wrote it: a key is never sent to another server named by --url.
        with contextlib.suppress(OSError):
            api_key = Path(str(running["api_key_file"])).read_text(encoding="utf-8").strip()
    options = ChatOptions(url, flow, customer, number, api_key or "", start, _journey_data(data, start))
    try:
        chat(options, sys.stdin, sys.stdout)
    except USER_ERRORS as error:
        raise fail(str(error)) from None


def _journey_data(data: str | None, start: bool) -> dict[str, Any]:
    if data is None:
        return {}
    if not start:
        raise fail("--data is the data of a journey: use it with --start")
    try:
        value = json.loads(data)
    except ValueError as error:
        raise fail(f"--data is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise fail('--data must be a JSON object, e.g. \'{"name": "Ada"}\'')
    return value


@app.command()
def flows(config: ConfigOption = None) -> None:
    """List the flows of the config's modules: name, version, steps, description."""
    registry = _registry(config)
    # The author's steps: the built-in ends (completed, cancelled, expired, failed) are every flow's.
    rows = [(f.name, str(f.version), str(len(f.own_steps())), _summary(f)) for f in registry]
    header = ("NAME", "VERSION", "STEPS", "DESCRIPTION")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *sorted(rows)]:
        typer.echo("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[3]]))


@app.command()
def check(config: ConfigOption = None) -> None:
    """List the steps that may send free text on WhatsApp outside its 24-hour window (in a
    conversation the business starts, or after a long wait) without a template=, and the texts
    a flow's catalogue does not translate (per locale, with flow and step); exit status 1 when
    there are any."""
    loaded, _ = _config(config, check_secrets=False)
    registry = _registry(config)
    findings = window_findings(registry, loaded.numbers)
    for finding in findings:
        typer.echo(str(finding))
    if findings:
        typer.echo(f"{len(findings)} step(s) need a template= to be sent on WhatsApp outside the window", err=True)
    else:
        typer.echo("every step that may run outside WhatsApp's 24-hour window has a template")
    missing = i18n.untranslated(registry)
    for text in missing:
        typer.echo(str(text))
    if missing:
        typer.echo(f"{len(missing)} text(s) untranslated: they go in the flow's language", err=True)
    if findings or missing:
        raise typer.Exit(1)


def _summary(flow: type[Flow]) -> str:
    doc = (flow.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


@app.command()
def graph(
    flow: Annotated[str, typer.Argument(metavar="FLOW", help="Flow name (see `chatflow flows`).")],
    format: Annotated[str, typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}.")] = "mermaid",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    version: Annotated[int | None, typer.Option(help="Flow version [default: the latest].")] = None,
    config: ConfigOption = None,
) -> None:
    """Draw a flow's state machine (the transition table the engine runs)."""
    if format not in FORMATS:
        raise fail(f"unknown format {format!r}; one of {', '.join(FORMATS)}")
    try:
        drawing = render(_registry(config).get(flow, version), format)
    except USER_ERRORS as error:
        raise fail(str(error)) from None
    if output is not None:
        output.write_bytes(drawing)
        typer.echo(f"wrote {output}", err=True)
    else:
        sys.stdout.buffer.write(drawing)
        sys.stdout.flush()


@app.command()
def record(
    flow: Annotated[str, typer.Argument(metavar="FLOW", help="Flow name (see `chatflow flows`).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder of the replay check's histories.")] = Path(
        "histories"
    ),
    limit: Annotated[int, typer.Option(min=1, help="Record at most this many conversations, newest first.")] = 20,
    no_redact: Annotated[
        bool, typer.Option("--no-redact", help="Keep phone numbers and data as they are (redacted by default).")
    ] = False,
    temporal_address: Annotated[
        str | None,
        typer.Option(
            help="Temporal frontend [default: CHATFLOW_TEMPORAL_ADDRESS, else the running `chatflow dev`'s, "
            "else localhost:7233]"
        ),
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    config: ConfigOption = None,
) -> None:
    """Save the histories of FLOW's conversations (those you had with `chatflow chat`, say) as
    new files for the replay check; a file already there is never rewritten. They are written
    decrypted (CHATFLOW_PAYLOAD_KEY) and redacted: phone numbers made up, data and API answers
    replaced, each file checked to replay still."""
    from chatflow.runtime.testing import record_histories
    from chatflow.temporal.client import connect

    loaded, _ = _config(config, check_secrets=False)
    flows = _registry(config)
    try:
        flows.get(flow)
    except USER_ERRORS as error:
        raise fail(str(error)) from None
    settings = loaded.settings
    running = running_dev(data_dir)
    address = temporal_address or settings.temporal_address or (str(running["temporal"]) if running else "")

    async def main() -> None:
        client = await connect(address=address, namespace=settings.temporal_namespace)
        recorded = await record_histories(client, flow, output, limit=limit, redact=not no_redact, flows=list(flows))
        if not recorded:
            where = client.service_client.config.target_host
            raise ChatflowError(f"no conversations of flow {flow!r} in Temporal at {where}; chat with it first")
        for entry in recorded:
            say(f"{'wrote' if entry.new else 'kept '} {entry.path}")

    try:
        asyncio.run(main())
    except USER_ERRORS as error:
        raise fail(str(error)) from None


@app.command("codec-server")
def codec_server(
    host: Annotated[str, typer.Option(help="Address it listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port it listens on.")] = 8081,
    ui_origin: Annotated[
        list[str] | None,
        typer.Option(help="Origin of a Temporal Web UI that may call it (repeatable) [default: http://localhost:8233]"),
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Ask callers for no key (a loopback --host only): for a local Web UI.")
    ] = False,
    log_json: LogJson = False,
    log_level: LogLevel = "info",
) -> None:
    """Decode payloads encrypted with CHATFLOW_PAYLOAD_KEY for Temporal's Web UI and CLI (the
    codec server protocol); callers send `Authorization: Bearer $CHATFLOW_API_KEY`."""
    import ipaddress

    import uvicorn

    from chatflow.domain.config import Settings
    from chatflow.temporal.converter import codec
    from chatflow.web.codec_server import codec_app

    configure_logging(json_lines=log_json, level=log_level)
    try:
        found = codec()
    except ConfigError as error:
        raise fail(str(error)) from None
    if found is None:
        raise fail("CHATFLOW_PAYLOAD_KEY is not set: payloads are not encrypted, there is nothing to decode")
    api_key = Settings.from_env().api_key
    if no_auth:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise fail(
                f"--no-auth serves decrypted histories to anyone who can reach it: only on a loopback --host, not {host}"
            )
        api_key = ""
    elif not api_key:
        raise fail("CHATFLOW_API_KEY is not set: callers must send it (or use --no-auth on a loopback --host)")
    origins = ui_origin or ["http://localhost:8233"]
    say(f"codec server on http://{host}:{port} for {', '.join(origins)} ({'no key asked' if no_auth else 'key asked'})")
    uvicorn.run(codec_app(found, api_key=api_key, origins=origins), host=host, port=port, log_config=None)


dead_letters_app = typer.Typer(
    help="Messages the forwarder put aside (Temporal could not take them): list them, send them again.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(dead_letters_app, name="dead-letters")

i18n_app = typer.Typer(
    help="The flows' message catalogues (gettext, through Babel): locales/<flow>.pot and "
    "locales/<locale>/LC_MESSAGES/<flow>.po beside each flow's module.",
    no_args_is_help=True,
)
app.add_typer(i18n_app, name="i18n")


def _written(paths: list[Path], what: str) -> None:
    for path in paths:
        typer.echo(f"wrote {path}")
    if not paths:
        typer.echo(f"no {what}", err=True)


@i18n_app.command("extract")
def i18n_extract(config: ConfigOption = None) -> None:
    """Write each flow's texts (Say, Ask, Handover and End texts, reprompts, choice titles) to
    its template, locales/<flow>.pot, each with the flow steps that send it."""
    _written(i18n.extract(_registry(config)), "flows")


@i18n_app.command("update")
def i18n_update(
    locale: Annotated[
        list[str] | None, typer.Option("--locale", "-l", help="Start this locale's catalogue too (repeatable).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Merge each flow's texts into its catalogues (locales/<locale>/LC_MESSAGES/<flow>.po): new
    texts untranslated, changed ones fuzzy, gone ones obsolete; translations kept."""
    _written(i18n.update(_registry(config), locale or ()), "catalogues: start one with --locale")


@i18n_app.command("compile")
def i18n_compile(config: ConfigOption = None) -> None:
    """Compile every catalogue (.po) into the .mo a worker reads when it starts (fuzzy entries
    left out)."""
    _written(i18n.compile_catalogues(_registry(config)), "catalogues")


RedisUrlOption = Annotated[
    str | None,
    typer.Option(help="Redis [default: CHATFLOW_REDIS_URL, else the running `chatflow dev`'s Valkey]"),
]


def _on_redis(
    config: str | None, redis_url: str | None, data_dir: Path, work: Callable[[Redis], Coroutine[Any, Any, int]]
) -> None:
    """Run `work` on the Redis of the config (or of the running `chatflow dev`); exit with its status."""
    from chatflow.runtime.services import connect_redis

    loaded, _ = _config(config, check_secrets=False)
    running = running_dev(data_dir)
    url = redis_url or loaded.settings.redis_url or (str(running.get("redis", "")) if running else "")
    if not url:
        raise fail(
            f"no Redis: set CHATFLOW_REDIS_URL or --redis-url, or start `chatflow dev` (none runs on {data_dir})"
        )

    async def main() -> int:
        redis = connect_redis(url)
        try:
            return await work(redis)
        except RedisError as error:
            raise ChatflowError(f"cannot reach Redis at {without_password(url)}: {error}") from None
        finally:
            await redis.aclose()

    try:
        status = asyncio.run(main())
    except USER_ERRORS as error:
        raise fail(str(error)) from None
    if status:
        raise typer.Exit(status)


@dead_letters_app.command("list")
def dead_letters_list(
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many, oldest first.")] = 100,
    redis_url: RedisUrlOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    config: ConfigOption = None,
) -> None:
    """The dead letters, oldest first: id, when put aside, conversation, message, why."""
    from chatflow.edge.dead_letters import count_dead_letters, list_dead_letters

    async def work(redis: Redis) -> int:
        letters = await list_dead_letters(redis, limit=limit)
        if not letters:
            say("no dead letters")
            return 0
        rows = [(d.id, d.at, d.kind, d.conversation or "-", d.message_id or "-", d.reason) for d in letters]
        header = ("ID", "PUT ASIDE", "KIND", "CONVERSATION", "MESSAGE", "REASON")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
        for row in [header, *rows]:
            say("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[5]]))
        total = await count_dead_letters(redis)
        if total > len(letters):
            say(f"({total - len(letters)} more; --limit shows more)")
        return 0

    _on_redis(config, redis_url, data_dir, work)


@dead_letters_app.command("retry")
def dead_letters_retry(
    ids: Annotated[
        list[str] | None, typer.Argument(metavar="[ID]...", help="Dead letters to retry (see `list`).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Retry every dead letter.")] = False,
    redis_url: RedisUrlOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    config: ConfigOption = None,
) -> None:
    """Put dead letters back into the buffer, to be forwarded again. A message that reached its
    conversation already is not handled twice. Exit status 1 when one could not be retried."""
    from chatflow.edge.dead_letters import count_dead_letters, list_dead_letters, retry_dead_letter

    if bool(ids) == all_:
        raise fail("name the dead letters to retry (IDs from `chatflow dead-letters list`), or --all")

    async def work(redis: Redis) -> int:
        chosen = ids or [d.id for d in await list_dead_letters(redis, limit=max(await count_dead_letters(redis), 1))]
        if not chosen:
            say("no dead letters")
        kept = 0
        for id in chosen:
            try:
                entry = await retry_dead_letter(redis, id)
            except Refused as refused:
                say(f"not retried {id}: {refused}")
                kept += 1
            else:
                say(f"retried {id} (back in the buffer as {entry})")
        return 1 if kept else 0

    _on_redis(config, redis_url, data_dir, work)


templates_app = typer.Typer(
    help="WhatsApp templates: the flows' declared ones checked against the providers' approved ones.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(templates_app, name="templates")


@templates_app.command("sync")
def templates_sync(
    create: Annotated[
        bool, typer.Option("--create", help="Create the Twilio contents that show choices as WhatsApp buttons.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Read the approved templates (the WhatsApp Business Account's, the Twilio account's content
    templates) and check every template the flows declare against them: name, language,
    parameters, approval. One line per problem; exit status 1 when there are any."""
    import httpx

    from chatflow.runtime.templates import sync

    loaded, _ = _config(config, check_secrets=False)
    found = list(_registry(config))

    async def main() -> Any:
        async with httpx.AsyncClient() as http:
            return await sync(loaded, found, http, create=create)

    try:
        report = asyncio.run(main())
    except USER_ERRORS as error:
        raise fail(str(error)) from None
    for problem in report.problems:
        say(problem)
    for note in report.notes:
        typer.echo(note, err=True)
    if report.problems:
        typer.echo(f"{len(report.problems)} problem(s) with the flows' WhatsApp templates", err=True)
        raise typer.Exit(1)
    if not report.checked:
        say("no template to check: no WhatsApp number in the config, or no flow declares a template")
    else:
        say("every template the flows declare is approved as declared")


def main() -> None:
    app()
