"""A generic HMAC-signed webhook.

    [[sources]]
    name = "shop"
    kind = "hmac"
    mapping = "shop_events"
    header = "X-Shop-Signature"     # where the signature is (default X-Signature)
    algorithm = "sha256"            # sha1 | sha256 | sha512
    encoding = "hex"                # hex | base64
    prefix = "sha256="              # in front of the signature, if the sender writes one
    timestamp_header = "X-Shop-Timestamp"  # when set: `<timestamp>.<body>` is signed, and checked fresh
    tolerance = 300                 # seconds a timestamp may be off
    id_field = "id"                 # the event id in the JSON body (a dotted path)
    type_field = "type"             # the event type in the JSON body (a dotted path)

The secret is `<NAME>_WEBHOOK_SECRET`.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from chatflow.domain.channel import WebhookRequest
from chatflow.domain.errors import BadRequest, Forbidden
from chatflow.domain.source import Source, SourceBinding, SourceEvent, SourceSpec, environment_name
from providers._sources import fresh, int_option, json_object, same, text_option

ALGORITHMS = ("sha1", "sha256", "sha512")
ENCODINGS = ("hex", "base64")


@dataclass(frozen=True)
class HmacSource:
    name: str
    secret: str
    header: str = "x-signature"
    algorithm: str = "sha256"
    encoding: str = "hex"
    prefix: str = ""
    timestamp_header: str = ""
    tolerance: int = 300
    id_field: str = "id"
    type_field: str = "type"

    def verify(self, request: WebhookRequest) -> list[SourceEvent]:
        signed = request.body
        if self.timestamp_header:
            timestamp = request.headers.get(self.timestamp_header, "")
            fresh(timestamp, self.tolerance, self.timestamp_header)
            signed = timestamp.encode() + b"." + request.body
        digest = hmac.new(self.secret.encode(), signed, self.algorithm).digest()
        expected = self.prefix + (digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode())
        if not same(request.headers.get(self.header, ""), expected):
            raise Forbidden(f"{self.header} does not hold")
        payload = json_object(request.body)
        event_id, kind = _at(payload, self.id_field), _at(payload, self.type_field)
        if not isinstance(event_id, (str, int)) or isinstance(event_id, bool) or not isinstance(kind, str):
            raise BadRequest(f"the event needs {self.id_field!r} and {self.type_field!r}")
        return [SourceEvent(str(event_id), kind, payload)]


def _at(payload: dict[str, Any], path: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


OPTIONS = ("header", "algorithm", "encoding", "prefix", "timestamp_header", "tolerance", "id_field", "type_field")


def build(binding: SourceBinding, environment: Mapping[str, str]) -> Source:
    options = binding.options
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r} (hmac takes {', '.join(OPTIONS)})")
    return HmacSource(
        binding.name,
        environment.get(environment_name(binding.name, "WEBHOOK_SECRET"), ""),
        header=text_option(options, "header", "X-Signature").lower(),
        algorithm=text_option(options, "algorithm", "sha256", ALGORITHMS),
        encoding=text_option(options, "encoding", "hex", ENCODINGS),
        prefix=text_option(options, "prefix", ""),
        timestamp_header=text_option(options, "timestamp_header", "").lower(),
        tolerance=int_option(options, "tolerance", 300),
        id_field=text_option(options, "id_field", "id"),
        type_field=text_option(options, "type_field", "type"),
    )


# Unknown senders: three days, as the longest of the known ones (Stripe); redelivery_hours changes it.
spec = SourceSpec(kind="hmac", build=build, redelivery=timedelta(days=3), option_keys=OPTIONS)
