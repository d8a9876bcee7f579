"""The console: a channel with no account, for `chatflow dev`, `chatflow chat`, curl and tests.

channel.py   the Channel: routes, send (into the outbox), answer
outbox.py    what the bot sent, in memory or in a Redis stream per customer
webhooks.py  POST/GET /console/messages, GET /console/numbers
"""

from __future__ import annotations

from chatflow.domain.addresses import TEL
from chatflow.domain.channel import ChannelSpec, NoSettings, Resources
from chatflow.domain.config import Config
from providers._whatsapp import WHATSAPP
from providers.console.channel import CONSOLE, ConsoleChannel
from providers.console.outbox import LATEST, START, ConsoleLine, ConsoleOutbox, Outbox, RedisOutbox


def build(config: Config, resources: Resources) -> ConsoleChannel:
    # With Redis the web app reads what a worker in another process sent; without it the
    # messages stay in this process (fine for tests, invisible to a separate worker).
    outbox = RedisOutbox(resources.redis) if resources.redis is not None else Outbox()
    return ConsoleChannel(outbox, numbers=config.numbers)


# The console stands in for any channel, so flows for SMS or WhatsApp can be tried locally.
spec = ChannelSpec(
    name="console",
    address_kinds={"console": CONSOLE, "sms": TEL, "whatsapp": WHATSAPP},
    settings=NoSettings,  # no account
    build=build,
)

__all__ = ["LATEST", "START", "ConsoleChannel", "ConsoleLine", "ConsoleOutbox", "Outbox", "RedisOutbox", "spec"]
