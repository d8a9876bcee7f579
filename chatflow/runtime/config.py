"""Reading `chatflow.toml` against the channels this installation has (`providers.CHANNELS`)."""

from __future__ import annotations

from pathlib import Path

import providers
from chatflow.domain import config as _config
from chatflow.domain.config import Config, Settings


def parse_config(
    text: str, settings: Settings | None = None, *, source: str = "chatflow.toml", check_secrets: bool = True
) -> Config:
    return _config.parse_config(
        text, settings, channels=providers.CHANNELS, source=source, check_secrets=check_secrets
    )


def load_config(
    path: str | Path | None = None, settings: Settings | None = None, *, check_secrets: bool = True
) -> Config:
    """Read the config file (`--config`, else CHATFLOW_CONFIG, else ./chatflow.toml)."""
    return _config.load_config(path, settings, channels=providers.CHANNELS, check_secrets=check_secrets)
