"""What Stripe's events mean to the shop (the [[sources]] entry `stripe` in chatflow.toml)."""

from typing import Any

from chatflow import Report, SourceEvent, SourceMapping, Start

stripe = SourceMapping()


def order(event: SourceEvent) -> dict[str, Any]:
    """The PaymentIntent's metadata: order_id, customer_id, phone, email, payment_link."""
    return dict(event.object["metadata"])


@stripe.on("payment_intent.payment_failed")
def payment_failed(event: SourceEvent) -> Start:
    return Start("payment_recovery", to=order(event)["phone"], data=order(event))


@stripe.on("payment_intent.succeeded")
def payment_succeeded(event: SourceEvent) -> Report:
    """Into the order's recovery conversation if one is open; else a confirmation of its own."""
    data = order(event)
    confirm = Start("payment_confirmed", to=data["phone"], data=data)
    return Report("payment_succeeded", order_id=data["order_id"], otherwise=confirm)
