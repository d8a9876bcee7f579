"""The quick-start flow: any first message gets a greeting and a numbered menu.

It speaks Spanish too: its catalogue is locales/es/LC_MESSAGES/demo.po (compiled to demo.mo), so a
journey with data {"locale": "es"}, or a customer whose number is Spanish-speaking (+34, +52...),
gets every text in Spanish.
"""

from chatflow import Ask, Choice, End, Flow, Handover, Say, Template, anything, hours, keyword


class Demo(Flow):
    """A small shop assistant: opening hours, order status, or a human."""

    greet = Say("Hi! I'm the chatflow demo bot.")

    menu = Ask(
        "What can I do for you?",
        choices=[
            Choice("Opening hours", "opening_hours"),
            Choice("Track my order", "ask_order"),
            Choice("Talk to a person", "handoff"),
        ],
        # QUIT, STOP, CANCEL... unsubscribe the customer from the number before any flow sees
        # them (chatflow refuses a branch on them), so the flow's own way out is "bye".
        branches={keyword("bye", "goodbye", "adios", "chao", whole=True): "goodbye"},
        reprompt="Sorry, I didn't get that. Reply with 1, 2 or 3.",
        attempts=3,
        on_no_match="goodbye",
        timeout=hours(24),
        on_timeout="goodbye",
        # After a person hands back, maybe a day later: on WhatsApp the approved menu goes then.
        template=Template("demo_menu", language="en", languages=["es"]),
    )

    opening_hours = Say("We're open 9:00-18:00, Monday to Saturday.", then="menu")

    ask_order = Ask(
        "What's your order number?",
        branches={anything: "order_status"},
        save_as="order",
        timeout=hours(24),
        on_timeout="goodbye",
    )
    order_status = Say("Order {order} is on its way and arrives tomorrow.", then="menu")

    # A real handover: an operator takes the conversation over on the dashboard (or through
    # the journeys API), talks with the customer, and hands it back to the menu.
    handoff = Handover(
        "Connecting you with a person...", timeout=hours(1), then="back_from_person", on_timeout="nobody_free"
    )
    # A person may hand back any time later: on WhatsApp only a template may go then.
    back_from_person = Say(
        "You're back with the demo bot.",
        then="menu",
        template=Template("back_with_the_bot", language="en", languages=["es"]),
    )
    nobody_free = End("completed", "Sorry, nobody is free right now. A person will text you back shortly.")
    # Also reached when the menu waited 24 hours: on WhatsApp only a template may go then.
    goodbye = End("completed", "Bye! Text us any time.", template=Template("goodbye", language="en", languages=["es"]))
