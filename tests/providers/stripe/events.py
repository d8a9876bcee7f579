"""Stripe's events as Stripe sends them, signed as Stripe signs them (its own library's helper)."""

import json
import time
import uuid
from typing import Any

import httpx
import stripe


def payment_intent_event(kind: str, metadata: dict[str, str], *, event_id: str = "") -> dict[str, Any]:
    """A PaymentIntent event in the shape Stripe sends (API version 2024-06-20), trimmed of fields
    nothing reads."""
    failed = kind.endswith("payment_failed")
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": f"req_{uuid.uuid4().hex[:14]}", "idempotency_key": None},
        "type": kind,
        "data": {
            "object": {
                "id": f"pi_{uuid.uuid4().hex[:24]}",
                "object": "payment_intent",
                "amount": 4200,
                "amount_received": 0 if failed else 4200,
                "currency": "usd",
                "customer": f"cus_{uuid.uuid4().hex[:14]}",
                "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}
                if failed
                else None,
                "metadata": metadata,
                "payment_method_types": ["card"],
                "status": "requires_payment_method" if failed else "succeeded",
            }
        },
    }


async def post_signed(
    web: httpx.AsyncClient,
    event: dict[str, Any],
    *,
    secret: str,
    timestamp: int | None = None,
    path: str = "/webhooks/stripe",
) -> httpx.Response:
    """POST `event` as Stripe does: `Stripe-Signature` over the body with `secret` (at `timestamp`)."""
    body = json.dumps(event)
    signature = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)
    return await web.post(
        path, content=body, headers={"Stripe-Signature": signature, "Content-Type": "application/json"}
    )
