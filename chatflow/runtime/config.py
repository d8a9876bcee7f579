"""Reading `chatflow.toml` against the channels this installation has (`providers.CHANNELS`)."""

from __future__ import annotations

import os
import re
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
