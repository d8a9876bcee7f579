"""Logging for chatflow processes: plain or JSON lines, with customers' phone numbers masked.

Phone numbers are personal data and logs travel far (aggregators, tickets, screenshots), so every
record passes through `MaskPhoneNumbers` before any handler formats it: uvicorn's access log,
Temporal's, ours. Enough of the number stays to tell numbers apart while debugging.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

# E.164-looking numbers, also URL-encoded (`%2B` in access-log query strings).
_PHONE = re.compile(r"(?P<prefix>\+|%2[Bb])(?P<digits>\d{7,15})(?!\d)")
KEEP_START = 4  # country code and area code, mostly
KEEP_END = 2


def mask_phone_numbers(text: str) -> str:
    """`+14155550100` -> `+1415*****00`."""

    def _mask(match: re.Match[str]) -> str:
        digits = match["digits"]
        hidden = len(digits) - KEEP_START - KEEP_END
        return f"{match['prefix']}{digits[:KEEP_START]}{'*' * hidden}{digits[-KEEP_END:]}"

    return _PHONE.sub(_mask, text)


class MaskPhoneNumbers(logging.Filter):
    """Renders the message (and any traceback) with phone numbers masked, before formatting."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_phone_numbers(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_phone_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_phone_numbers(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log aggregators."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info or record.exc_text:
            entry["error"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, json_lines: bool = False, level: str = "INFO") -> None:
    """Send every logger's records to stderr through the masking filter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MaskPhoneNumbers())
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's loggers carry their own handlers when configured by uvicorn; ours run them.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
