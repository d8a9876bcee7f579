"""The small flows the tests run, in one place (module level, so workers can import them).

The first group exercises one engine capability each; `FLOWS` are those the edge, journeys and
wiring tests register on their workers.
"""

from datetime import timedelta

from chatflow import (
    Ask,
    Choice,
    Convo,
    Delay,
    End,
    Flow,
    Say,
    Wait,
    WaitUntil,
    anything,
    hours,
    keyword,
    no,
    number,
    yes,
)
from chatflow.flows.steps import Step

# -- one engine capability each ----------------------------------------------------------------


class Confirm(Flow):
    """A yes/no question with a reprompt limit and a 24 h timeout that reminds, then expires."""

    ask = Ask(
        "Confirm your appointment tomorrow? Reply YES or NO.",
        branches={yes: "confirmed", no: "declined"},
        reprompt="Please reply YES or NO.",
        attempts=3,
        on_no_match="gave_up",
        timeout=hours(24),
        on_timeout="remind",
    )
    remind = Say("Reminder: please confirm your appointment with YES or NO.")
    wait_again = Wait(branches={yes: "confirmed", no: "declined"}, timeout=hours(24), on_timeout="expired")
    confirmed = End("completed", "Great, see you tomorrow!")
    declined = End("cancelled", "OK, your appointment is cancelled.")
    gave_up = End("failed", "Sorry, I couldn't understand. We'll call you instead.")


class Echo(Flow):
    """Echoes every message, so tests can see the order in which they were handled."""

    listen = Ask(None, branches={keyword("bye", whole=True): "bye", anything: "echo"}, save_as="last")
    echo = Say("echo: {last}", then="listen")
    bye = End("completed", "bye")


class Counter(Flow):
    """Counts replies and checks none is missing or out of order; reports every 100th."""

    defaults = {"count": 0, "gaps": 0}
    listen = Ask(None, branches={number(): "count"}, save_as="last")

    async def count(self, convo: Convo) -> Ask:
        convo.data["count"] += 1
        if convo.data["last"] != convo.data["count"]:
            convo.data["gaps"] += 1
        if convo.data["count"] % 100 == 0:
            await convo.say(f"{convo.data['count']} received")
        return self.listen


class Notify(Flow):
    """Sends a notification and handles a send failure through its own failure branch."""

    on_failure = "undeliverable"
    notify = Say("Your parcel arrives today.")
    done = End("completed")
    undeliverable = End("failed")


class Loops(Flow):
    """A bug: sends the same text for ever. The loop guard must stop it."""

    ping = Say("ping", then="ping")


class Menu(Flow):
    menu = Ask(
        "Pick one",
        choices=[Choice("Track my order", "track"), Choice("Talk to a person", "person", id="HUMAN")],
        save_as="picked",
    )
    track = End("completed", "Tracking")
    person = End("completed", "Person")


class Later(Flow):
    """Durable waits: a delay and waiting until a time given in the journey data."""

    pause = Delay(hours(1))
    first = Say("one hour later")
    until = WaitUntil("call_at")
    second = Say("at the agreed time")
    done = End("completed")


class ShortLived(Flow):
    expires_after = hours(2)
    ask = Ask("Anything to add?", branches={anything: "thanks"})
    thanks = End("completed", "Thanks")


class PaymentLink(Flow):
    """Waits for a business event as well as a reply."""

    # "help" would be answered by the edge before any flow saw it: flows may not branch on it.
    ask = Ask(
        "Pay here: https://pay.example/1",
        branches={keyword("how"): "how"},
        events={"payment_succeeded": "paid"},
        timeout=hours(1),
        on_timeout="expired",
    )
    how = Say("Open the link to pay.", then="ask")
    paid = End("completed", "Paid, thanks!")


class SurveyV1(Flow):
    name = "survey"
    version = 1
    ask = Ask("Rate us 1-5", branches={number(1, 5): "thanks"}, save_as="score")
    thanks = End("completed", "Thanks!")


class SurveyV2(Flow):
    """A breaking change shipped as a new version: a consent question comes first."""

    name = "survey"
    version = 2
    consent = Ask("May we ask one question? YES/NO", branches={yes: "ask", no: "cancelled"})
    ask = Ask("Rate us 1-5", branches={number(1, 5): "thanks"}, save_as="score")
    thanks = End("completed", "Thank you!")


# -- what the edge, journeys and wiring tests run ------------------------------------------------


class Burst(Flow):
    """A notification of two messages: bulk sends for the rate limiter."""

    first = Say("Your order shipped.")
    second = Say("It arrives tomorrow.")
    done = End("completed")


class Parrot(Flow):
    """Answers every message with its text, the one that started it too, so order and count show
    in what it says."""

    async def trigger(self, convo: Convo) -> Step:
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

    async def summarise(self, convo: Convo) -> None:
        updates = "; ".join(event["update"] for event in convo.data["events"])
        await convo.say(f"{len(convo.data['events'])} updates: {updates}")


FLOWS = [Burst, Parrot, Payment, PaymentInterrupting, PaymentQueued, OrderDigest]
