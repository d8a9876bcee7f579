"""Lifecycle events to Segment as track calls, a batch a request (`POST /v1/batch`, basic auth
with the source's write key `<NAME>_SINK_SECRET`). The event is titled (`Conversation Started`),
`messageId` is its id (Segment drops repeats), `userId` the data key named by `user_key` (the
business's own customer id) or else `anonymousId` the conversation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from chatflow.domain.sink import LifecycleEvent, Sink, SinkBinding, SinkSpec
from chatflow.domain.source import environment_name
from providers._sinks import post, properties, title
from providers._sources import text_option

SEGMENT_API = "https://api.segment.io/v1/batch"


@dataclass(frozen=True)
class SegmentSink:
    name: str
    url: str
    write_key: str
    user_key: str
    http: httpx.AsyncClient

    async def deliver(self, events: Sequence[LifecycleEvent]) -> None:
        batch = [self._track(event) for event in events]
        await post(self.http, self.url, what=f"Segment ({self.name})", json={"batch": batch}, auth=(self.write_key, ""))

    def _track(self, event: LifecycleEvent) -> dict[str, object]:
        user = event.data.get(self.user_key) if self.user_key else None
        who = {"userId": str(user)} if user is not None else {"anonymousId": event.conversation}
        return {
            "type": "track",
            "event": title(event.type),
            "messageId": event.id,
            "timestamp": event.at,
            "properties": properties(event),
            **who,
        }


def build(binding: SinkBinding, environment: Mapping[str, str], http: httpx.AsyncClient) -> Sink:
    unknown = set(binding.options) - {"user_key"}
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r} (segment takes user_key)")
    key = environment.get(environment_name(binding.name, "SINK_SECRET"), "")
    user_key = text_option(binding.options, "user_key", "")
    return SegmentSink(binding.name, binding.url or SEGMENT_API, key, user_key, http)


sink_spec = SinkSpec(kind="segment", build=build, batch=100)
