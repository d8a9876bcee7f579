"""After a purchase (the Kursaha journey): wait, check opt-in, thank, and ask for a 1-5 rating.

Journey data: `name`, `product`, `opted_in`.

A journey starts it hours after the purchase, outside WhatsApp's 24-hour window: its first two
messages name the approved templates that go instead of their text there (`chatflow check`).
Twilio's Content SIDs are the account's own: TWILIO_CONTENT_<TEMPLATE NAME> in the environment.
"""

import os

from chatflow import Ask, Delay, End, Flow, If, Say, Template, anything, days, hours, number


class PurchaseFollowup(Flow):
    """Thank a customer some hours after a purchase and ask how it went."""

    let_it_arrive = Delay(hours(2))
    check_opt_in = If(lambda data: data.get("opted_in") is True, then="thank", otherwise="not_opted_in")

    thank = Say(
        "Thanks for buying {product}, {name}!",
        template=Template(
            "purchase_thanks",
            language="en",
            body=["{product}", "{name}"],
            content_sid=os.environ.get("TWILIO_CONTENT_PURCHASE_THANKS", ""),
        ),
    )
    rate = Ask(
        "How would you rate it, from 1 (poor) to 5 (great)?",
        branches={number(4, 5): "delighted", number(1, 3): "ask_what_went_wrong"},
        save_as="rating",
        reprompt="Please reply with a number from 1 to 5.",
        attempts=2,
        on_no_match="no_rating",
        timeout=days(3),
        on_timeout="no_rating",
        template=Template(
            "purchase_rating", language="en", content_sid=os.environ.get("TWILIO_CONTENT_PURCHASE_RATING", "")
        ),
    )

    delighted = End("completed", "Wonderful, thank you! Tell a friend: they get 10% off with code FRIEND10.")

    ask_what_went_wrong = Ask(
        "Sorry it wasn't great. What went wrong?",
        branches={anything: "apologise"},
        save_as="feedback",
        timeout=days(2),
        on_timeout="no_rating",
    )
    apologise = End("completed", "Thank you for telling us. Someone from our team will get back to you.")

    no_rating = End("completed")
    not_opted_in = End("cancelled")
