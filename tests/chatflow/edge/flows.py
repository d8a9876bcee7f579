"""Small flows the edge tests drive through a real Temporal server."""

from datetime import timedelta

from chatflow import Ask, End, Flow, Say, anything, keyword


class Burst(Flow):
    """A notification of two messages: bulk sends for the rate limiter."""

    first = Say("Your order shipped.")
    second = Say("It arrives tomorrow.")
    done = End("completed")


class Echo(Flow):
    """Answers every message with its text, so order and count show in what it says."""

    async def trigger(self, convo):
        # The message that started the conversation is its trigger: answer it too.
        convo.data["last"] = convo.reply
        return self.echo if convo.reply else self.listen

    listen = Ask(None, branches={anything: "echo"}, save_as="last")
    echo = Say("got {last}", then="listen")


class Payment(Flow):
    """A journey that waits for the customer or the business; busy policy: skip (the default)."""

    ask = Ask(
        "Your payment failed. Reply PAY for a new link.",
        branches={keyword("pay"): "paid"},
        events={"payment_succeeded": "paid"},
    )
    paid = End("completed", "Thanks, all settled.")


class PaymentInterrupting(Payment):
    name = "payment_interrupting"
    when_busy = "interrupt"


class PaymentQueued(Payment):
    name = "payment_queued"
    when_busy = "queue"


class OrderDigest(Flow):
    """Every order update of a short window, in one message."""

    name = "order_digest"
    digest_window = timedelta(milliseconds=300)
    when_busy = "queue"

    async def summarise(self, convo):
        updates = "; ".join(event["update"] for event in convo.data["events"])
        await convo.say(f"{len(convo.data['events'])} updates: {updates}")


FLOWS = [Burst, Echo, Payment, PaymentInterrupting, PaymentQueued, OrderDigest]
