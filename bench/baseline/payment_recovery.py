"""The baseline's payment recovery: `conversations/payment_recovery.py` written out by hand on
plain temporalio, as a careful engineer's first version would be: one activity per shop call and
per send (each retried with backoff), the waits as `wait_condition` with a timeout (a timer), the
payment gateway's event as a signal.

Imports nothing but temporalio and the standard library, so Temporal's sandbox loads it as is.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

WORKFLOW = "BaselinePaymentRecovery"
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
CALL_TIMEOUT = timedelta(seconds=10)
SEND_GIVE_UP_AFTER = timedelta(hours=1)

LINK = "Your payment for order {order_id} failed. You can pay again here: {payment_link}"
REMINDER = "Reminder: order {order_id} is waiting for payment. Pay here: {payment_link}"
PAID = "Payment received, thank you! Order {order_id} is confirmed."
EXPIRED = "We didn't receive payment, so order {order_id} has been cancelled."
COD = (
    "Your card payment for order {order_id} didn't go through, so we've switched it to cash on delivery. "
    "No action needed: your order is confirmed."
)


class ShopAndSms:
    """The activities: the shop's API and the SMS provider (here: a record of what was sent)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    @activity.defn(name="baseline_get_customer")
    async def get_customer(self, customer_id: str) -> dict[str, Any]:
        return {"id": customer_id, "tier": "regular"}

    @activity.defn(name="baseline_cash_on_delivery")
    async def cash_on_delivery(self, order_id: str) -> dict[str, Any]:
        return {"id": order_id, "payment_method": "cod"}

    @activity.defn(name="baseline_send_payment_sms")
    async def send(self, to: str, text: str) -> str:
        self.sent.append((to, text))
        return f"SM{len(self.sent)}"


@workflow.defn(name=WORKFLOW)
class BaselinePaymentRecovery:
    def __init__(self) -> None:
        self.paid = False

    @workflow.signal
    def payment_succeeded(self) -> None:
        self.paid = True

    @workflow.run
    async def run(self, job: dict[str, str]) -> str:
        to = job["customer"]
        try:
            customer = await workflow.execute_activity(
                "baseline_get_customer", job["customer_id"], start_to_close_timeout=CALL_TIMEOUT, retry_policy=RETRY
            )
        except ActivityError:
            customer = {}
        if customer.get("tier") == "power":
            try:
                await workflow.execute_activity(
                    "baseline_cash_on_delivery",
                    job["order_id"],
                    start_to_close_timeout=CALL_TIMEOUT,
                    retry_policy=RETRY,
                )
                await self.send(to, COD.format(**job))
                return "completed"
            except ActivityError:
                pass
        await self.send(to, LINK.format(**job))
        for wait, then in ((timedelta(hours=24), REMINDER), (timedelta(hours=48), EXPIRED)):
            try:
                await workflow.wait_condition(lambda: self.paid, timeout=wait)
                break
            except TimeoutError:
                await self.send(to, then.format(**job))
        else:
            return "expired"
        await self.send(to, PAID.format(**job))
        return "completed"

    @staticmethod
    async def send(to: str, text: str) -> None:
        await workflow.execute_activity(
            "baseline_send_payment_sms",
            args=[to, text],
            start_to_close_timeout=CALL_TIMEOUT,
            schedule_to_close_timeout=SEND_GIVE_UP_AFTER,
            retry_policy=RETRY,
        )
