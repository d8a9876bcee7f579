"""A failed payment (the Fyno example): look the customer up, then rescue the order.

Power users are switched to cash on delivery through the shop's API and get a confirmation;
everyone else gets a link to pay again, a reminder after 24 hours and, 72 hours after the link,
the order expires. A `payment_succeeded` event from the payment gateway ends the flow early.
Confirmations go by email as well as by SMS (by SMS alone when the journey has no email, or
the email cannot be sent).

Journey data: `customer_id`, `order_id`, `payment_link`, and `email` for the email confirmations.

The business starts these conversations, usually outside WhatsApp's 24-hour window: every message
names the approved template that goes instead of its text there (`chatflow check`). Twilio's
Content SIDs are the account's own: TWILIO_CONTENT_<TEMPLATE NAME> in the worker's environment.
"""

import os

from chatflow import End, Flow, Http, If, Notify, Say, Template, Wait, days, hours

SHOP_API = os.environ.get("SHOP_API_URL", "https://shop.example.com/api")

CASH_ON_DELIVERY = (
    "Your card payment for order {order_id} didn't go through, so we've switched it to "
    "cash on delivery. No action needed: your order is confirmed."
)
PAID = "Payment received, thank you! Order {order_id} is confirmed."


def template(name: str, *body: str) -> Template:
    """The approved template `name` (English), its body parameters from the journey's data."""
    content_sid = os.environ.get(f"TWILIO_CONTENT_{name.upper()}", "")
    return Template(name, language="en", body=list(body), content_sid=content_sid)


class PaymentRecovery(Flow):
    """Failed payment: power users get cash on delivery, others a link to pay again."""

    version = 2  # v2: the confirmations by email too
    defaults = {"api": SHOP_API}
    expires_after = days(4)

    look_up_customer = Http("GET", "{api}/customers/{customer_id}", save_as="customer", on_error="send_link")
    is_power_user = If(
        lambda data: data["customer"].get("tier") == "power",
        then="switch_to_cash_on_delivery",
        otherwise="send_link",
    )

    switch_to_cash_on_delivery = Http(
        "PUT",
        "{api}/orders/{order_id}",
        json={"payment_method": "cod"},
        save_as="order",
        on_error="send_link",
    )
    email_cash_on_delivery = Notify(
        CASH_ON_DELIVERY,
        to="{email}",
        channel="email",
        subject="Order {order_id}: switched to cash on delivery",
        then="confirm_cash_on_delivery",
        on_error="confirm_cash_on_delivery",
    )
    confirm_cash_on_delivery = End(
        "completed", CASH_ON_DELIVERY, template=template("payment_switched_to_cod", "{order_id}")
    )

    send_link = Say(
        "Your payment for order {order_id} failed. You can pay again here: {payment_link}",
        template=template("payment_failed", "{order_id}", "{payment_link}"),
    )
    wait_for_payment = Wait(events={"payment_succeeded": "paid"}, timeout=hours(24), on_timeout="remind")
    remind = Say(
        "Reminder: order {order_id} is waiting for payment. Pay here: {payment_link}",
        template=template("payment_reminder", "{order_id}", "{payment_link}"),
    )
    wait_after_reminder = Wait(events={"payment_succeeded": "paid"}, timeout=hours(48), on_timeout="order_expired")

    paid = Notify(
        PAID,
        to="{email}",
        channel="email",
        subject="Order {order_id}: payment received",
        then="confirm_paid",
        on_error="confirm_paid",
    )
    confirm_paid = End("completed", PAID, template=template("payment_received", "{order_id}"))
    order_expired = End(
        "expired",
        "We didn't receive payment, so order {order_id} has been cancelled.",
        template=template("order_cancelled_unpaid", "{order_id}"),
    )


class PaymentRecoveryV1(PaymentRecovery):
    """Version 1, confirming by SMS only: kept for conversations that started on it (a running
    conversation stays on its version; see "Changing a flow safely" in the README)."""

    name = "payment_recovery"
    version = 1
    switch_to_cash_on_delivery = Http(
        "PUT",
        "{api}/orders/{order_id}",
        json={"payment_method": "cod"},
        save_as="order",
        then="confirm_cash_on_delivery",
        on_error="send_link",
    )
    paid = End("completed", PAID, template=template("payment_received", "{order_id}"))  # type: ignore[assignment]
