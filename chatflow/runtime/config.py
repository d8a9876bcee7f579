"""Reading `chatflow.toml` against the channels this installation has (`providers.CHANNELS`), and
the one list of the environment settings chatflow and its providers read (`SETTINGS`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

import providers
from chatflow.domain import config as _config
from chatflow.domain.config import Config, Settings
from chatflow.domain.errors import ConfigError


def parse_config(
    text: str, settings: Settings | None = None, *, source: str = "chatflow.toml", check_secrets: bool = True
) -> Config:
    return _config.parse_config(text, settings, channels=providers.CHANNELS, source=source, check_secrets=check_secrets)


def load_config(
    path: str | Path | None = None, settings: Settings | None = None, *, check_secrets: bool = True
) -> Config:
    """Read the config file (`--config`, else CHATFLOW_CONFIG, else ./chatflow.toml); a mistake
    in it is a ConfigError naming the file and the line (`chatflow.toml:7: ...`)."""
    try:
        return _config.load_config(path, settings, channels=providers.CHANNELS, check_secrets=check_secrets)
    except ConfigError as error:
        file = Path(path or os.environ.get("CHATFLOW_CONFIG") or "chatflow.toml")
        raise ConfigError(with_line(str(error), str(file), file)) from None


def check_secrets(config: Config, path: str | Path | None = None) -> None:
    """The secrets check of `load_config`, for a config loaded without it (`chatflow dev` checks
    once it has started what supplies some of them: the mail catcher)."""
    try:
        _config.check_secrets(config, providers.CHANNELS, source=str(path or "chatflow.toml"))
    except ConfigError as error:
        file = Path(path or os.environ.get("CHATFLOW_CONFIG") or "chatflow.toml")
        raise ConfigError(with_line(str(error), str(file), file)) from None


def with_line(message: str, source: str, file: Path) -> str:
    """`source: what` as `source:line: what`, the line found from what the message names (an
    entry, a table, a key, a flow); unchanged when it names none, or already has a line."""
    prefix = f"{source}: "
    if not message.startswith(prefix):
        return message
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return message
    what = message[len(prefix) :]
    line = _line_of(what, lines)
    return f"{source}:{line}: {what}" if line else message


def _line_of(what: str, lines: list[str]) -> int | None:
    def first(pattern: str, nth: int = 1) -> int | None:
        found = [i for i, text in enumerate(lines, start=1) if re.match(pattern, text)]
        return found[nth - 1] if len(found) >= nth else None

    if at := re.search(r"\(at line (\d+), column \d+\)", what):  # tomllib's own
        return int(at.group(1))
    if "(at end of document)" in what:
        return max(len(lines), 1)
    if key := re.search(r"unknown key '([^']+)'", what):
        return first(rf"\s*(\[+)?{re.escape(key.group(1))}\b")
    if entry := re.match(r"\[\[numbers\]\] entry (\d+)", what):
        header = first(r"\s*\[\[numbers\]\]", int(entry.group(1)))
        key = re.search(r"\b(number|address|flow|provider|channel|rate|keywords) ", what[entry.end() :])
        if header is not None and key is not None:  # the entry's own line for that key
            for i, text in enumerate(lines[header:], start=header + 1):
                if re.match(r"\s*\[", text):
                    break
                if re.match(rf"\s*{key.group(1)}\s*=", text):
                    return i
        return header
    if what.startswith("[flows] module"):
        return first(r"\s*modules\s*=") or first(r"\s*\[flows\]")
    if table := re.match(r"\[(\w+)\]", what):
        return first(rf"\s*\[{table.group(1)}\]")
    if bound := re.match(r"\S+ is bound (?:twice|to unknown flow '([^']+)')", what):
        if bound.group(1):
            return first(rf"""\s*(flow\s*=|.*=\s*)["']{re.escape(bound.group(1))}["']""")
        number = what.split(" ", 1)[0]
        return first(rf"""\s*\w+\s*=\s*["']{re.escape(number)}["']""", 2)
    return None


@dataclass(frozen=True)
class EnvironmentSetting:
    """One environment variable chatflow or a provider reads, as the settings reference shows it."""

    name: str  # `CHATFLOW_API_KEY`, or a pattern: `<NAME>_WEBHOOK_SECRET`
    doc: str
    provider: str = ""  # the channel, source or sink kind that reads it; "" for chatflow's own
    required: bool = False  # a channel's: must be set when a number is bound to it
    default: str = ""


# chatflow's own settings; each provider's are read off its settings dataclass or spec below.
OWN_SETTINGS = (
    EnvironmentSetting("CHATFLOW_CONFIG", "path of `chatflow.toml` (default `./chatflow.toml`; `--config` wins)"),
    EnvironmentSetting(
        "CHATFLOW_TEMPORAL_ADDRESS",
        "Temporal frontend, `host:7233` (`web`/`worker` default `localhost:7233`; `dev` embeds one when unset)",
    ),
    EnvironmentSetting(
        "CHATFLOW_TEMPORAL_NAMESPACE", "Temporal namespace (default: `TEMPORAL_NAMESPACE`, else `default`)"
    ),
    EnvironmentSetting(
        "TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE",
        "Temporal's own client settings (see Temporal's environment configuration); used when the `CHATFLOW_` "
        "ones are unset",
    ),
    EnvironmentSetting(
        "CHATFLOW_REDIS_URL",
        "Redis URL, `redis://host:6379/0`; a cluster: `redis://node:6379?cluster=true` (`dev` embeds Valkey when unset)",
    ),
    EnvironmentSetting(
        "CHATFLOW_REDIS_REPLICA_ACKS",
        "replicas of its Redis master that must have a webhook's message before it is acknowledged (`WAIT`, "
        "up to 0.5 s; else it goes straight to Temporal); default `0`. See Deploying: Redis with replicas",
    ),
    EnvironmentSetting(
        "CHATFLOW_FORWARDER",
        "the process that forwards the inbound buffer into Temporal: `web` (default: in the web app) or `worker` "
        "(beside the worker, so the web process only answers webhooks). See Deploying: where the forwarder runs",
    ),
    EnvironmentSetting("CHATFLOW_PUBLIC_URL", "the URL providers see, for webhook signature checks behind a proxy"),
    EnvironmentSetting("CHATFLOW_API_KEY", "the key the journeys API (`POST /api/...`) and the dashboard require"),
    EnvironmentSetting(
        "CHATFLOW_PAYLOAD_KEY",
        "`kid:base64key,...`: encrypt every Temporal payload with AES-GCM, the first key encrypting, all decrypting",
    ),
    EnvironmentSetting(
        "CHATFLOW_ID_KEY",
        "base64 of 16 or more random bytes: conversation ids, search attributes and Redis key names name "
        "customers by a keyed hash, not their number (see Security: customer numbers in ids)",
    ),
    EnvironmentSetting(
        "CHATFLOW_HTTP_ALLOW",
        "`host[:port],...`: hosts `Http` steps may call although they are on a loopback, private or link-local "
        "address (added to chatflow.toml's `[http] allow`)",
    ),
    EnvironmentSetting(
        "CHATFLOW_MEDIA_DIR",
        "the worker's folder for customers' media a flow fetches (`convo.fetch_media`); unset, fetching fails",
    ),
    EnvironmentSetting("CHATFLOW_CALLBACK_URL", "where every delivery status change is POSTed (delivery reports)"),
    EnvironmentSetting(
        "CHATFLOW_CALLBACK_SECRET", "the secret the delivery reports are signed with (`X-Chatflow-Signature`)"
    ),
    EnvironmentSetting(
        "CHATFLOW_CONSOLE",
        "`1`: `chatflow web` serves the console channel too, behind the API key (`chatflow dev` always serves it)",
    ),
    EnvironmentSetting(
        "CHATFLOW_TRUSTED_PROXIES",
        "addresses or networks (`10.0.0.0/8,192.0.2.7`) whose `X-Forwarded-For`/`-Proto` count (default none)",
    ),
    EnvironmentSetting("CHATFLOW_LOG_JSON", "`1`: JSON log lines"),
    EnvironmentSetting("CHATFLOW_LOG_LEVEL", "`debug`, `info` (default), `warning`, `error`"),
    EnvironmentSetting(
        "CHATFLOW_OTEL",
        "`1`: OpenTelemetry tracing (needs the `otel` extra); `OTEL_SERVICE_NAME` and the other `OTEL_*` "
        "variables apply",
    ),
    EnvironmentSetting("CHATFLOW_URL", "the web app `chatflow chat` talks to (its `--url`)"),
)


def settings_reference() -> tuple[EnvironmentSetting, ...]:
    """Every environment setting: chatflow's own, then each channel's (its settings dataclass's
    fields), each source kind's and each sink kind's secrets (`<NAME>_...` for the entry NAME)."""
    channels = tuple(
        EnvironmentSetting(f.metadata["env"], f.metadata["doc"], spec.name, f.metadata["required"], str(f.default))
        for spec in providers.CHANNELS
        for f in fields(spec.settings)
        if "env" in f.metadata
    )
    sources = tuple(
        EnvironmentSetting(f"<NAME>_{suffix}", "of the `[[sources]]` entry called NAME", f"source: {spec.kind}", True)
        for spec in providers.SOURCES
        for suffix in spec.secrets
    )
    sinks = tuple(
        EnvironmentSetting(f"<NAME>_{suffix}", "of the `[[sinks]]` entry called NAME", f"sink: {spec.kind}", True)
        for spec in providers.SINKS
        for suffix in spec.secrets
    )
    return OWN_SETTINGS + channels + sources + sinks


def settings_markdown() -> str:
    """The settings reference as Markdown tables: chatflow's own, then each provider's."""
    names = ", ".join
    own = ["| setting | what it does |", "| --- | --- |"]
    own += [f"| {names(f'`{n}`' for n in s.name.split(', '))} | {s.doc} |" for s in OWN_SETTINGS]
    theirs = ["| provider | setting | required | default | what it does |", "| --- | --- | --- | --- | --- |"]
    for s in settings_reference()[len(OWN_SETTINGS) :]:
        default = f"`{s.default}`" if s.default else ""
        theirs.append(f"| `{s.provider}` | `{s.name}` | {'yes' if s.required else ''} | {default} | {s.doc} |")
    for spec in providers.CHANNELS:
        if not any(f.metadata.get("env") for f in fields(spec.settings)):
            theirs.append(f"| `{spec.name}` | | | | none: no account |")
    return "\n".join(own) + "\n\n" + "\n".join(theirs) + "\n"
