"""Configuration: `chatflow.toml` (numbers bound to flows) plus the environment.

`Settings` are chatflow's own (Temporal, Redis, the API); each channel reads its own settings
from `Settings.environment` and the options of its bindings from their [[numbers]] entries.

Every mistake is reported as a `ConfigError` whose message says what is wrong and where, so the
CLI can print it without a traceback.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from chatflow.domain.addresses import Address, AddressKind, e164
from chatflow.domain.errors import ConfigError
from chatflow.domain.keywords import DEFAULT_LANGUAGES, Keywords, command
from chatflow.domain.sink import EVENT_TYPES, SinkBinding
from chatflow.domain.source import SourceBinding

if TYPE_CHECKING:
    from chatflow.domain.channel import ChannelSpec

DEFAULT_FLOW_MODULES = ("conversations.demo", "conversations.payment_recovery", "conversations.purchase_followup")


@dataclass(frozen=True)
class NumberBinding:
    """One of our addresses (a virtual number, an email sender) bound to the flow that answers it."""

    address: Address
    provider: str
    channel: str
    flow: str
    # The provider's own keys of the [[numbers]] entry, as its `ChannelSpec.options` read them.
    options: dict[str, str] = field(default_factory=dict)
    keywords: dict[str, str] = field(default_factory=dict)  # first word -> flow that it starts
    rate: float = 0.0  # outbound messages per second; 0: the default for the sender type
    help_text: str = ""  # the answer to HELP/INFO; "" uses the service's default
    fallback_number: str = ""  # an SMS number that takes WhatsApp messages that do not arrive
    # Consent: numbers of one brand share every customer's opt-out (`chatflow.edge.consent`).
    brand: str = ""
    keyword_languages: tuple[str, ...] = DEFAULT_LANGUAGES  # whose STOP/START/HELP words it answers
    require_opt_in: bool = False  # journeys the business starts need a recorded opt-in

    @property
    def answered_words(self) -> Keywords:
        """The STOP/START/HELP words this number answers itself, in its languages."""
        return Keywords.of(self.keyword_languages)

    @property
    def number(self) -> str:
        """The address's value: what conversation ids and the edge's keys are made of."""
        return self.address.value


@dataclass
class Settings:
    """Environment settings (names as in DESIGN.md); empty strings mean "not set"."""

    temporal_address: str = ""
    temporal_namespace: str = ""  # "": TEMPORAL_NAMESPACE, a Temporal profile, else "default"
    redis_url: str = ""
    # Replicas of its Redis master that must have a webhook's message before it is acknowledged.
    redis_replica_acks: int = 0
    # The process that forwards the inbound buffer into Temporal: the web app's or the worker's.
    forwarder: Literal["web", "worker"] = "web"
    public_url: str = ""
    api_key: str = ""
    # Delivery reports: every status change is POSTed here, signed with the secret.
    callback_url: str = ""
    callback_secret: str = ""
    # Hosts ("host" or "host:port") `Http` steps may call although they are on a loopback,
    # private or link-local address: CHATFLOW_HTTP_ALLOW, plus chatflow.toml's [http] allow.
    http_allow: tuple[str, ...] = ()
    # Where customers' media a flow fetches (`convo.fetch_media`) are written: CHATFLOW_MEDIA_DIR.
    media_dir: str = ""
    # The whole environment it was read from: each channel reads its own settings in it.
    environment: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            temporal_address=env.get("CHATFLOW_TEMPORAL_ADDRESS", ""),
            temporal_namespace=env.get("CHATFLOW_TEMPORAL_NAMESPACE", ""),
            redis_url=env.get("CHATFLOW_REDIS_URL", ""),
            redis_replica_acks=_count(env, "CHATFLOW_REDIS_REPLICA_ACKS"),
            forwarder=_forwarder(env),
            public_url=env.get("CHATFLOW_PUBLIC_URL", "").rstrip("/"),
            api_key=env.get("CHATFLOW_API_KEY", ""),
            callback_url=env.get("CHATFLOW_CALLBACK_URL", ""),
            callback_secret=env.get("CHATFLOW_CALLBACK_SECRET", ""),
            http_allow=tuple(host.strip() for host in env.get("CHATFLOW_HTTP_ALLOW", "").split(",") if host.strip()),
            media_dir=env.get("CHATFLOW_MEDIA_DIR", ""),
            environment=dict(env),
        )


def _forwarder(env: Mapping[str, str]) -> Literal["web", "worker"]:
    text = env.get("CHATFLOW_FORWARDER", "").strip() or "web"
    if text == "web":
        return "web"
    if text == "worker":
        return "worker"
    raise ConfigError(f"CHATFLOW_FORWARDER={text!r}: expected web (the default) or worker")


def _count(env: Mapping[str, str], name: str) -> int:
    """A whole number setting, 0 when unset."""
    text = env.get(name, "").strip()
    if not text:
        return 0
    if not text.isdigit():
        raise ConfigError(f"{name}={text!r}: expected a whole number (0 or more)")
    return int(text)


@dataclass
class Config:
    numbers: list[NumberBinding]
    flow_modules: list[str]
    settings: Settings
    # The folder of the config file: flow modules listed in it are found there first.
    folder: str = ""
    sources: list[SourceBinding] = field(default_factory=list)  # [[sources]]: signed inbound webhooks
    sinks: list[SinkBinding] = field(default_factory=list)  # [[sinks]]: lifecycle events out

    def binding(self, number: str, provider: str | None = None) -> NumberBinding | None:
        for binding in self.numbers:
            if binding.number == number and (provider is None or binding.provider == provider):
                return binding
        return None


def parse_config(
    text: str,
    settings: Settings | None = None,
    *,
    channels: Sequence[ChannelSpec],
    source: str = "chatflow.toml",
    check_secrets: bool = True,
) -> Config:
    """The config in `text`; `channels` are the channel plug-ins a number may be bound to."""
    by_name = {spec.name: spec for spec in channels}
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from None
    settings = settings or Settings.from_env()
    _known_keys(raw, TOP_LEVEL_KEYS, source)
    flows_table = raw.get("flows", {})
    if not isinstance(flows_table, dict):
        raise ConfigError(f"{source}: [flows] must be a table with modules = [...]")
    _known_keys(flows_table, FLOWS_KEYS, f"{source}: [flows]")
    flow_modules = flows_table.get("modules", list(DEFAULT_FLOW_MODULES))
    if not isinstance(flow_modules, list) or not all(isinstance(m, str) for m in flow_modules):
        raise ConfigError(f"{source}: [flows] modules must be a list of module names")
    entries = raw.get("numbers", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: numbers must be [[numbers]] entries")
    numbers = [_binding(entry, i, source, by_name) for i, entry in enumerate(entries, start=1)]
    seen: set[tuple[str, str]] = set()
    for binding in numbers:
        key = (binding.provider, binding.number)
        if key in seen:
            raise ConfigError(f"{source}: {binding.number} is bound twice for {binding.provider}")
        seen.add(key)
    from_env = _hosts(settings.http_allow, "CHATFLOW_HTTP_ALLOW")
    settings = replace(settings, http_allow=(*from_env, *_http_allow(raw.get("http", {}), source)))
    if check_secrets:  # `chatflow flows` and `graph` read flows only: no secrets needed
        _check_secrets(numbers, settings, source, by_name)
    sources = raw.get("sources", [])
    if not isinstance(sources, list):
        raise ConfigError(f"{source}: sources must be [[sources]] entries")
    bound = [_source(entry, i, source) for i, entry in enumerate(sources, start=1)]
    if len({b.name for b in bound}) < len(bound):
        raise ConfigError(f"{source}: two [[sources]] entries have one name")
    sinks = raw.get("sinks", [])
    if not isinstance(sinks, list):
        raise ConfigError(f"{source}: sinks must be [[sinks]] entries")
    sink_bindings = [_sink(entry, i, source) for i, entry in enumerate(sinks, start=1)]
    if len({b.name for b in sink_bindings}) < len(sink_bindings):
        raise ConfigError(f"{source}: two [[sinks]] entries have one name")
    return Config(numbers=numbers, flow_modules=flow_modules, settings=settings, sources=bound, sinks=sink_bindings)


TOP_LEVEL_KEYS = ("numbers", "flows", "http", "sources", "sinks")
FLOWS_KEYS = ("modules",)
HTTP_KEYS = ("allow",)
NUMBER_KEYS = (
    "number", "address", "provider", "channel", "flow", "keywords", "rate", "help_text", "fallback_number",
    "brand", "keyword_languages", "require_opt_in",
)  # fmt: skip


SOURCE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")


def _source(entry: object, index: int, source: str) -> SourceBinding:
    """A [[sources]] entry: name, kind, mapping, from and redelivery_hours are chatflow's; any other
    key is the kind's own, checked by it when the source is built."""
    where = f"{source}: [[sources]] entry {index}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table")
    for key in ("name", "kind", "mapping"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ConfigError(f'{where} needs {key} = "..."')
    name = entry["name"]
    if not SOURCE_NAME.fullmatch(name):
        raise ConfigError(f"{where}: name {name!r} must be lower-case letters, digits, - and _ (it is a URL path)")
    sender = entry.get("from", "")
    try:
        sender = e164(sender, what="from") if sender else ""
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    hours = entry.get("redelivery_hours")
    if hours is not None and (not isinstance(hours, (int, float)) or hours <= 0):
        raise ConfigError(f"{where}: redelivery_hours must be a positive number of hours")
    own = {k: v for k, v in entry.items() if k not in ("name", "kind", "mapping", "from", "redelivery_hours")}
    return SourceBinding(
        name=name,
        kind=entry["kind"],
        mapping=entry["mapping"],
        from_=sender,
        redelivery=timedelta(hours=hours) if hours is not None else None,
        options=own,
    )


def _sink(entry: object, index: int, source: str) -> SinkBinding:
    """A [[sinks]] entry: name, kind, url and types are chatflow's; any other key is the kind's."""
    where = f"{source}: [[sinks]] entry {index}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table")
    for key in ("name", "kind"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ConfigError(f'{where} needs {key} = "..."')
    if not SOURCE_NAME.fullmatch(entry["name"]):
        raise ConfigError(f"{where}: name {entry['name']!r} must be lower-case letters, digits, - and _")
    url = entry.get("url", "")
    if not isinstance(url, str) or (url and not url.startswith(("https://", "http://"))):
        raise ConfigError(f"{where}: url must be an http(s) URL")
    types = entry.get("types", list(EVENT_TYPES))
    if not isinstance(types, list) or not all(isinstance(t, str) and t in EVENT_TYPES for t in types):
        raise ConfigError(f"{where}: types must be a list of {', '.join(EVENT_TYPES)}")
    own = {k: v for k, v in entry.items() if k not in ("name", "kind", "url", "types")}
    return SinkBinding(name=entry["name"], kind=entry["kind"], url=url, types=tuple(types), options=own)


def _http_allow(table: object, source: str) -> list[str]:
    """[http] allow = ["host", "host:port", ...]: hosts `Http` steps may call inside the network."""
    where = f"{source}: [http]"
    if not isinstance(table, dict):
        raise ConfigError(f'{where} must be a table with allow = ["host:port", ...]')
    _known_keys(table, HTTP_KEYS, where)
    allow = table.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(entry, str) for entry in allow):
        raise ConfigError(f'{where} allow must be a list of "host" or "host:port"')
    return _hosts(allow, f"{where} allow")


def _hosts(entries: Iterable[str], where: str) -> list[str]:
    for entry in entries:
        if not _HOST.fullmatch(entry):
            raise ConfigError(f'{where}: {entry!r} is not "host" or "host:port" (no scheme, no path)')
    return list(entries)


_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?")


def _known_keys(table: Mapping[str, object], known: Sequence[str], where: str) -> None:
    """A misspelt key would otherwise be ignored in silence: name it, with the nearest valid one."""
    for key in table:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f" (known: {', '.join(known)})"
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")


def load_config(
    path: str | Path | None = None,
    settings: Settings | None = None,
    *,
    channels: Sequence[ChannelSpec],
    check_secrets: bool = True,
) -> Config:
    """Read the config file (`--config`, else CHATFLOW_CONFIG, else ./chatflow.toml)."""
    path = Path(path or os.environ.get("CHATFLOW_CONFIG", "chatflow.toml"))
    if not path.is_file():
        raise ConfigError(f"config file {path} not found (pass --config or set CHATFLOW_CONFIG)")
    text = path.read_text(encoding="utf-8")
    config = parse_config(text, settings, channels=channels, source=str(path), check_secrets=check_secrets)
    config.folder = str(path.resolve().parent)
    return config


def _binding(entry: object, index: int, source: str, channels: Mapping[str, ChannelSpec]) -> NumberBinding:
    where = f"{source}: [[numbers]] entry {index}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table")
    provider = entry.get("provider")
    spec = channels.get(provider) if isinstance(provider, str) else None
    # Before the provider is known to be right, a key is checked against every provider's options.
    own = spec.option_keys if spec else tuple(key for other in channels.values() for key in other.option_keys)
    _known_keys(entry, (*NUMBER_KEYS, *own), where)
    for key in ("provider", "flow"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ConfigError(f'{where} needs {key} = "..."')
    if spec is None:
        raise ConfigError(f"{where}: provider {provider!r} is not one of {', '.join(channels)}")
    address, channel = _address(entry, where, spec)
    try:
        options = spec.options({key: entry[key] for key in spec.option_keys if key in entry})
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    languages = entry.get("keyword_languages", list(DEFAULT_LANGUAGES))
    if not isinstance(languages, list) or not all(isinstance(code, str) for code in languages):
        raise ConfigError(f'{where}: keyword_languages must be a list such as ["en", "es"]')
    try:
        answered = Keywords.of(languages)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    brand = entry.get("brand", "")
    if not isinstance(brand, str) or (brand and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", brand)):
        raise ConfigError(f"{where}: brand must be a name of letters, digits, '.', '_' or '-'")
    require_opt_in = entry.get("require_opt_in", False)
    if not isinstance(require_opt_in, bool):
        raise ConfigError(f"{where}: require_opt_in must be true or false")
    keywords = entry.get("keywords", {})
    if not isinstance(keywords, dict):
        raise ConfigError(f'{where}: keywords must be a table of keyword = "flow"')
    for word in keywords:
        if command(str(word)) in answered.reserved:
            raise ConfigError(
                f"{where}: keyword {word!r} is answered by every number itself (opt-out, opt-in or help); "
                "it can never start a flow"
            )
    rate = entry.get("rate", 0.0)
    if not isinstance(rate, (int, float)) or rate < 0:
        raise ConfigError(f"{where}: rate must be a number of messages per second")
    fallback_number = str(entry.get("fallback_number", ""))
    if fallback_number:
        try:
            fallback_number = e164(fallback_number, what="fallback_number")
        except ValueError as error:
            raise ConfigError(f"{where}: {error}") from None
    return NumberBinding(
        address=address,
        provider=spec.name,
        channel=channel,
        flow=entry["flow"],
        options=options,
        keywords={str(k): str(v) for k, v in keywords.items()},
        rate=float(rate),
        help_text=str(entry.get("help_text", "")),
        fallback_number=fallback_number,
        brand=brand,
        keyword_languages=tuple(languages),
        require_opt_in=require_opt_in,
    )


def _address(entry: Mapping[str, object], where: str, spec: ChannelSpec) -> tuple[Address, str]:
    """The address an entry binds and the channel it is on: `number` (a phone number in E.164, of
    the kind of the entry's channel) or `address` (of a kind the provider carries)."""
    number, text, channel = entry.get("number"), entry.get("address"), entry.get("channel")
    if (number is None) == (text is None):
        raise ConfigError(f'{where} needs number = "..." (a phone number) or address = "..." (any other), not both')
    if channel is not None and channel not in spec.carries:
        raise ConfigError(f"{where}: channel {channel!r} is not one of {', '.join(spec.carries)} for {spec.name}")
    if number is not None:
        channel = channel or spec.carries[0]
        if not isinstance(number, str) or not number.startswith("+"):
            raise ConfigError(f"{where}: number {number!r} must be in E.164 form (+15005550006)")
        return _parsed(number, spec.address_kinds[channel], where), channel
    if not isinstance(text, str) or not text:
        raise ConfigError(f'{where} needs address = "..." (kind:value, such as mailto:support@shop.example)')
    address = _parsed(text, spec.address_kinds[channel or spec.carries[0]], where)
    on = [name for name, kind in spec.address_kinds.items() if kind.name == address.kind]
    if not on or (channel is not None and channel not in on):
        raise ConfigError(
            f"{where}: a {address.kind} address is not one {spec.name} carries on {channel or 'any channel'}"
        )
    return address, channel or on[0]


def _parsed(text: str, kind: AddressKind, where: str) -> Address:
    try:
        return Address.parse(text, kind)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None


def check_secrets(config: Config, channels: Sequence[ChannelSpec], *, source: str = "chatflow.toml") -> None:
    """Every channel a number is bound to has the settings it needs (a ConfigError naming them)."""
    _check_secrets(config.numbers, config.settings, source, {spec.name: spec for spec in channels})


def _check_secrets(
    numbers: list[NumberBinding], settings: Settings, source: str, channels: Mapping[str, ChannelSpec]
) -> None:
    missing: list[str] = []
    for provider in sorted({b.provider for b in numbers}):
        missing += [name for name in channels[provider].missing_settings(settings) if name not in missing]
    if missing:
        raise ConfigError(f"{source} binds numbers whose provider needs {', '.join(missing)} in the environment")


def check_flows(config: Config, known: Iterable[str], *, source: str = "chatflow.toml") -> None:
    """Every flow a number starts (its flow and its keyword flows) must be one the modules define."""
    known = set(known)
    for binding in config.numbers:
        for flow in (binding.flow, *binding.keywords.values()):
            if flow not in known:
                names = ", ".join(sorted(known)) or "none"
                raise ConfigError(
                    f"{source}: {binding.number} is bound to unknown flow {flow!r} "
                    f"(flows in {', '.join(config.flow_modules)}: {names})"
                )
