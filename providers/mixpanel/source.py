"""Mixpanel's custom-webhook cohort sync: JSON `{"action": "members" | "add_members" |
"remove_members", "parameters": {"mixpanel_cohort_id", "mixpanel_cohort_name", "members": [...],
"page_info": {...}}}`, authenticated with the basic-auth user and password set on the
integration. Mixpanel sends no event id: a page of one sync is identified by the digest of its
body, so the same page delivered again acts once. The event type is the action."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from chatflow.domain.channel import WebhookRequest
from chatflow.domain.errors import BadRequest, Forbidden
from chatflow.domain.source import Source, SourceBinding, SourceEvent, SourceSpec, environment_name
from providers._sources import json_object, same


@dataclass(frozen=True)
class MixpanelSource:
    name: str
    user: str
    password: str

    def verify(self, request: WebhookRequest) -> list[SourceEvent]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            given = base64.b64decode(token.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            given = ""
        if scheme.lower() != "basic" or not same(given, f"{self.user}:{self.password}"):
            raise Forbidden("Authorization: Basic with the integration's user and password is required")
        sync = json_object(request.body)
        action = sync.get("action")
        if not isinstance(action, str) or not isinstance(sync.get("parameters"), dict):
            raise BadRequest("a Mixpanel cohort sync has an action and parameters")
        return [SourceEvent(hashlib.sha256(request.body).hexdigest(), action, sync)]


def build(binding: SourceBinding, environment: Mapping[str, str]) -> Source:
    if binding.options:
        raise ValueError(f"unknown key {sorted(binding.options)[0]!r} (mixpanel takes none of its own)")
    user = environment.get(environment_name(binding.name, "WEBHOOK_USER"), "")
    password = environment.get(environment_name(binding.name, "WEBHOOK_SECRET"), "")
    return MixpanelSource(binding.name, user, password)


spec = SourceSpec(
    kind="mixpanel", build=build, redelivery=timedelta(days=1), secrets=("WEBHOOK_USER", "WEBHOOK_SECRET")
)
