"""A workflow history as an operator reads it in Temporal's UI, for tests of what it holds."""

from __future__ import annotations

import base64
import json
from typing import Any

from temporalio.client import WorkflowHistory


def history_text(history: WorkflowHistory) -> str:
    """The history as the Temporal UI shows it: the events as JSON, and every payload's data
    (base64 in the JSON) decoded; plus the events' raw bytes."""
    text = history.to_json()
    decoded: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("data"), str):
                decoded.append(base64.b64decode(value["data"]).decode("utf-8", "replace"))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(text))
    raw = b"".join(event.SerializeToString() for event in history.events).decode("utf-8", "replace")
    return "\n".join([text, *decoded, raw])
