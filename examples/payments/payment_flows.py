"""The shop's payment flows, started and told by Stripe's events (see stripe_mapping.py).

Journey data is the PaymentIntent's metadata: order_id, customer_id, phone, email, payment_link.
"""

import os

from chatflow import End, Flow, Http, If, Notify, Say, Wait, days, hours

SHOP_API = os.environ.get("SHOP_API_URL", "https://shop.example.com/api")

PAID = "Payment received, thank you! Order {order_id} is confirmed."
CASH_ON_DELIVERY = (
    "Your card payment for order {order_id} didn't go through, so we've switched it to "
    "cash on delivery. No action needed: your order is confirmed."
)


def email(text: str, subject: str, then: str) -> Notify:
    """The same words by email; the SMS goes anyway when the email cannot."""
    return Notify(text, to="{email}", channel="email", subject=subject, then=then, on_error=then)


class PaymentRecovery(Flow):
    """Failed payment: power users get cash on delivery, others a link to pay again."""

    keys = ("order_id",)  # Stripe's later payment_intent.succeeded finds it by its order
    defaults = {"api": SHOP_API}
    expires_after = days(4)

    look_up_customer = Http("GET", "{api}/customers/{customer_id}", save_as="customer", on_error="send_link")
    is_power_user = If(
        lambda data: data["customer"].get("tier") == "power",
        then="switch_to_cash_on_delivery",
        otherwise="send_link",
    )
    switch_to_cash_on_delivery = Http(
        "PUT", "{api}/orders/{order_id}", json={"payment_method": "cod"}, on_error="send_link"
    )
    email_cash_on_delivery = email(CASH_ON_DELIVERY, "Order {order_id}: cash on delivery", "confirm_cash_on_delivery")
    confirm_cash_on_delivery = End("completed", CASH_ON_DELIVERY)

    send_link = Say("Your payment for order {order_id} failed. You can pay again here: {payment_link}")
    wait_for_payment = Wait(events={"payment_succeeded": "paid"}, timeout=hours(24), on_timeout="remind")
    remind = Say("Reminder: order {order_id} is waiting for payment. Pay here: {payment_link}")
    wait_after_reminder = Wait(events={"payment_succeeded": "paid"}, timeout=hours(48), on_timeout="order_expired")
    paid = email(PAID, "Order {order_id}: payment received", "confirm_paid")
    confirm_paid = End("completed", PAID)
    order_expired = End("expired", "We didn't receive payment, so order {order_id} has been cancelled.")


class PaymentConfirmed(Flow):
    """A payment that succeeded at once: the confirmation, by email and SMS."""

    sink_keys = ("order_id",)  # its steps reach the shop's webhook with the order
    email_confirmation = email(PAID, "Order {order_id}: payment received", "confirm")
    confirm = End("completed", PAID)
