"""Stripe's webhook events (`payment_intent.succeeded`...), verified as Stripe's library verifies
them: HMAC-SHA256 of `<timestamp>.<body>` with the endpoint's secret (`whsec_...`), the timestamp
within `tolerance` seconds (Stripe's default, 300) so an old request replayed is refused."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import stripe

from chatflow.domain.channel import WebhookRequest
from chatflow.domain.errors import BadRequest, Forbidden
from chatflow.domain.source import Source, SourceBinding, SourceEvent, SourceSpec, environment_name
from providers._sources import int_option, json_object

DEFAULT_TOLERANCE = 300  # seconds, as stripe.Webhook.DEFAULT_TOLERANCE


@dataclass(frozen=True)
class StripeSource:
    name: str
    secret: str
    tolerance: int = DEFAULT_TOLERANCE

    def verify(self, request: WebhookRequest) -> list[SourceEvent]:
        header = request.headers.get("stripe-signature", "")
        try:
            stripe.WebhookSignature.verify_header(request.body, header, self.secret, self.tolerance)
        except stripe.SignatureVerificationError as error:
            raise Forbidden(f"Stripe-Signature does not hold: {error.user_message or error}") from None
        event = json_object(request.body)
        if not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
            raise BadRequest("a Stripe event has an id and a type")
        return [SourceEvent(event["id"], event["type"], event)]


def build(binding: SourceBinding, environment: Mapping[str, str]) -> Source:
    unknown = set(binding.options) - set(spec.option_keys)
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r} (stripe takes {', '.join(spec.option_keys)})")
    secret = environment.get(environment_name(binding.name, "WEBHOOK_SECRET"), "")
    return StripeSource(binding.name, secret, int_option(binding.options, "tolerance", DEFAULT_TOLERANCE))


# Stripe retries an undelivered event for up to three days.
spec = SourceSpec(kind="stripe", build=build, redelivery=timedelta(days=3), option_keys=("tolerance",))
