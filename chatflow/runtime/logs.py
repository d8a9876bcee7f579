"""Logging for chatflow processes: plain or JSON lines, with customers' addresses masked.

Phone numbers and email addresses are personal data and logs travel far (aggregators, tickets,
screenshots), so every record passes through `MaskAddresses` before any handler formats it:
uvicorn's access log, Temporal's, ours. Each address kind that can be found in running text
(`AddressKind.pattern`: phone numbers, email addresses) is masked by its kind, keeping enough to
tell addresses apart while debugging.

A conversation id (`chat:sms:+15005550006:+14155550100`) keeps our own number and masks only
the customer's (`chat:sms:+15005550006:+1415*****00`): the journeys API accepts an id masked
like that, as long as one conversation matches it, so an id can be pasted from a log line.

Failures chatflow handles (a send refused, an HTTP call that failed and took the flow's failure
branch) are one line each; a traceback is logged only for a bug (an exception nobody raised on
purpose).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import temporalio.activity
import temporalio.workflow
from temporalio.exceptions import ApplicationError

from chatflow.domain.addresses import mask_addresses


class MaskAddresses(logging.Filter):
    """Renders the message (and any traceback) with addresses masked, before formatting."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_addresses(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_addresses(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_addresses(record.stack_info)
        return True


# A URL's query string: where API keys and customers' data ride (httpx logs every request's URL).
_QUERY = re.compile(r"(?P<url>\b[a-z][a-z0-9+.-]*://[^\s?#\"'<>]*)\?[^\s#\"'<>]*", re.IGNORECASE)


def without_query_strings(text: str) -> str:
    """`GET https://api.example.com/orders?key=s3cret` -> `GET https://api.example.com/orders?…`."""
    return _QUERY.sub(lambda match: match["url"] + "?…", text)


class UrlsWithoutQuery(logging.Filter):
    """Every URL in a message loses its query string (after `MaskAddresses` rendered it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "://" in message:
            record.msg = without_query_strings(message)
            record.args = None
        return True


class HandledActivityFailures(logging.Filter):
    """Temporal logs every failed activity attempt with its traceback. An `ApplicationError` is
    one chatflow's activities raise on purpose (a provider refused a send, an API answered 500):
    the flow handles it, so it becomes one line. Anything else is a bug and keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != temporalio.activity.logger.logger.name or not record.exc_info:
            return True
        error = record.exc_info[1]
        if not isinstance(error, ApplicationError):
            return True
        info: dict[str, Any] = getattr(record, "temporal_activity", None) or {}
        final = " (not retried)" if error.non_retryable else ""
        record.msg = (
            f"activity {info.get('activity_type', '?')} attempt {info.get('attempt', '?')} failed{final}: "
            f"{error.message} [conversation {info.get('workflow_id', '?')}]"
        )
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


def _context(record: logging.LogRecord) -> dict[str, str]:
    """The conversation (and run) a Temporal log record comes from, when it comes from one."""
    info = getattr(record, "temporal_workflow", None) or getattr(record, "temporal_activity", None)
    if not isinstance(info, dict):
        return {}
    run = info.get("run_id") or info.get("workflow_run_id") or ""
    return {"conversation": str(info.get("workflow_id", "")), "run_id": str(run)}


class PlainFormatter(logging.Formatter):
    """`time level logger: message`, plus the conversation of a Temporal record that does not
    name it already."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        context = _context(record)
        conversation = mask_addresses(context.get("conversation", ""))
        if conversation and conversation not in record.getMessage():
            record.msg = f"{record.getMessage()} [conversation {conversation}]"
            record.args = None
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log aggregators."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({key: mask_addresses(value) for key, value in _context(record).items() if value})
        if record.exc_info or record.exc_text:
            entry["error"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, json_lines: bool = False, level: str = "INFO") -> None:
    """Send every logger's records to stderr through the masking filter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(HandledActivityFailures())  # before masking: it rewrites the message
    handler.addFilter(MaskAddresses())
    handler.addFilter(UrlsWithoutQuery())
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Temporal appends a dict of the workflow's or activity's details to every message; the
    # formatters above add the one detail that matters (the conversation) once, compactly.
    temporalio.workflow.logger.workflow_info_on_message = False
    temporalio.activity.logger.activity_info_on_message = False
    # uvicorn's loggers carry their own handlers when configured by uvicorn; ours run them.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
