"""Histories made fit to commit: `chatflow record` writes them decrypted, and redacted by default.

A recorded history is replayed by the replay check in CI, with no key: its payloads are written
decoded (CHATFLOW_PAYLOAD_KEY's encryption undone). Redacted, it keeps what a replay reads
and decides on, with the personal parts replaced:

- every phone number (`+` and 7 to 15 digits) becomes a made-up one of the same length, the same
  number always the same made-up one;
- the conversation's data (`data` of a journey, an event, a message or a continued run), the
  answers of `Http` calls, names, and the `ChatflowData` search attribute become "redacted";
- what the conversation asked for (activity inputs: texts sent, HTTP requests with their headers;
  its results, memo changes), which a replay never reads, has every text "redacted".

What a customer wrote is kept: a flow's decisions depend on it. A flow whose decisions depend on
its data (a condition on an API's answer) may not replay once redacted: `chatflow record` checks
each history replays before writing it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.converter import PayloadCodec

REDACTED = "redacted"
_PHONE = re.compile(r"\+(\d{7,15})(?!\d)")
_JSON = b"json/plain"
# Event attributes of what the workflow asked for: never read back by a replay.
_COMMANDS = {
    "activity_task_scheduled_event_attributes",
    "workflow_execution_completed_event_attributes",
    "workflow_execution_continued_as_new_event_attributes",
    "workflow_execution_update_completed_event_attributes",
    "workflow_properties_modified_event_attributes",
}
_DATA_KEYS = {"data", "profile_name"}
_SEARCH_DATA = "ChatflowData"


def payloads(message: Message, name: str = "") -> Iterator[tuple[str, Payload]]:
    """Every payload in `message`, with the name it is kept under: the key of the nearest map
    holding it (a search attribute's, a marker's detail), else its field's."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = [(str(key), item) for key, item in value.items()]
        elif isinstance(value, Message):
            items = [(name or field.name, value)]
        else:
            items = [(name or field.name, item) for item in value]
        for key, item in items:
            if isinstance(item, Payload):
                yield key, item
            elif isinstance(item, Message):
                yield from payloads(item, key)


async def decode(history: WorkflowHistory, codec: PayloadCodec) -> None:
    """Undo `codec` (CHATFLOW_PAYLOAD_KEY's encryption) on every payload of `history`, in place."""
    found = [payload for event in history.events for _, payload in payloads(event)]
    for payload, decoded in zip(found, await codec.decode(found), strict=True):
        payload.CopyFrom(decoded)


class Redactor:
    """Redacts histories; one per set of histories keeps made-up numbers consistent across them."""

    def __init__(self) -> None:
        self._numbers: dict[str, str] = {}

    def history(self, history: WorkflowHistory) -> WorkflowHistory:
        events: Sequence[HistoryEvent] = history.events
        for event in events:
            attributes = event.WhichOneof("attributes") or ""
            for name, payload in payloads(event):
                if payload.metadata.get("encoding") != _JSON:
                    continue
                value = json.loads(payload.data)
                if attributes in _COMMANDS or name == _SEARCH_DATA:
                    value = self._all(value)
                else:
                    value = self._read(value)
                payload.data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        text = self.text(history.to_json())  # numbers outside payloads (ids, identities)
        return WorkflowHistory.from_json(history.workflow_id, text)

    def text(self, value: str) -> str:
        return _PHONE.sub(self._number, value)

    def _number(self, match: re.Match[str]) -> str:
        digits = match[1]
        if digits not in self._numbers:
            serial = str(len(self._numbers) + 1)
            self._numbers[digits] = digits[:2] + serial.zfill(len(digits) - 2)
        return "+" + self._numbers[digits]

    def _all(self, value: Any) -> Any:
        if isinstance(value, str):
            return REDACTED if value else value
        if isinstance(value, dict):
            return {key: self._all(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._all(item) for item in value]
        return value

    def _read(self, value: Any) -> Any:
        """What a replay reads: numbers replaced, data and API answers redacted, the rest kept."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self._read(item) for item in value]
        if not isinstance(value, dict):
            return value
        if {"status", "json", "text"} <= value.keys():  # an Http call's answer
            return {**value, "json": self._all(value["json"]), "text": self._all(value["text"])}
        return {key: self._all(item) if key in _DATA_KEYS else self._read(item) for key, item in value.items()}
