"""Building the sources of chatflow.toml: each `[[sources]]` entry's plug-in and its mapping."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

import providers
from chatflow.domain.config import Config
from chatflow.domain.errors import ConfigError
from chatflow.domain.source import SourceMapping
from chatflow.journeys.sources import ConfiguredSource

DEFAULT_ATTRIBUTE = "mapping"


def load_mapping(reference: str, *, where: str) -> SourceMapping:
    """The SourceMapping `module:attribute` (or `module`, its `mapping`) names."""
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not module_name.startswith(error.name):
            raise  # the module exists but imports something missing: the author's bug
        raise ConfigError(f"{where}: mapping module {module_name!r} not found") from None
    found = getattr(module, attribute or DEFAULT_ATTRIBUTE, None)
    if not isinstance(found, SourceMapping):
        raise ConfigError(f"{where}: {reference!r} is not a SourceMapping (name one as module:attribute)")
    return found


def load_sources(
    config: Config, *, reserved_paths: Iterable[str] = (), source: str = "chatflow.toml"
) -> list[ConfiguredSource]:
    """The configured sources; ConfigError for a kind, secret, option or mapping that is wrong, or a
    name whose path a channel already serves (`reserved_paths`)."""
    # A mapping module beside chatflow.toml is found there, as its flow modules are.
    if config.folder and config.folder not in sys.path:
        sys.path.insert(0, config.folder)
    built = providers.build_sources(config, source=source)
    taken = set(reserved_paths)
    configured = []
    for binding in config.sources:
        where = f"{source}: [[sources]] {binding.name!r}"
        if f"/webhooks/{binding.name}" in taken:
            raise ConfigError(f"{where}: /webhooks/{binding.name} is a channel's route; name the source otherwise")
        plugin, spec = built[binding.name]
        configured.append(
            ConfiguredSource(
                binding,
                plugin,
                load_mapping(binding.mapping, where=where),
                binding.redelivery or spec.redelivery,
                spec.content_type,
            )
        )
    return configured
