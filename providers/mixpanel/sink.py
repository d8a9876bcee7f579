"""Lifecycle events to Mixpanel's Import API (`POST /import?strict=1&project_id=...`), a batch a
request, with a service account (`<NAME>_SINK_USER`, `<NAME>_SINK_SECRET`). `$insert_id` is the
event's id (Mixpanel drops repeats), `distinct_id` the data key named by `user_key` or else the
conversation, `time` in milliseconds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx

from chatflow.domain.sink import LifecycleEvent, Sink, SinkBinding, SinkSpec
from chatflow.domain.source import environment_name
from providers._sinks import post, properties
from providers._sources import text_option

MIXPANEL_API = "https://api.mixpanel.com/import"


@dataclass(frozen=True)
class MixpanelSink:
    name: str
    url: str
    project_id: str
    user: str
    secret: str
    user_key: str
    http: httpx.AsyncClient

    async def deliver(self, events: Sequence[LifecycleEvent]) -> None:
        rows = [self._row(event) for event in events]
        params = {"strict": "1", "project_id": self.project_id}
        await post(
            self.http, self.url, what=f"Mixpanel ({self.name})", json=rows, params=params, auth=(self.user, self.secret)
        )

    def _row(self, event: LifecycleEvent) -> dict[str, object]:
        user = event.data.get(self.user_key) if self.user_key else None
        return {
            "event": event.type,
            "properties": {
                "time": int(datetime.fromisoformat(event.at).timestamp() * 1000),
                "distinct_id": str(user) if user is not None else event.conversation,
                "$insert_id": event.id.replace(".", "-")[-36:],
                **properties(event),
            },
        }


def build(binding: SinkBinding, environment: Mapping[str, str], http: httpx.AsyncClient) -> Sink:
    unknown = set(binding.options) - {"project_id", "user_key"}
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r} (mixpanel takes project_id, user_key)")
    project = binding.options.get("project_id")
    if not isinstance(project, (str, int)) or not str(project):
        raise ValueError("needs project_id = ... (the Mixpanel project's id)")
    return MixpanelSink(
        binding.name,
        binding.url or MIXPANEL_API,
        str(project),
        environment.get(environment_name(binding.name, "SINK_USER"), ""),
        environment.get(environment_name(binding.name, "SINK_SECRET"), ""),
        text_option(binding.options, "user_key", ""),
        http,
    )


sink_spec = SinkSpec(kind="mixpanel", build=build, batch=100, secrets=("SINK_USER", "SINK_SECRET"))
