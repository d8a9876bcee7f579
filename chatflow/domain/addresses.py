"""Who talks to whom: phone numbers in E.164, and the conversation id built and read in one place.

A conversation is one customer on one of our numbers on one channel; its id is also the id of
its Temporal workflow, so the API, the logs and Temporal's own UI all name it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

CONVERSATION_PREFIX = "chat"


def e164(number: str, *, what: str = "number") -> str:
    """The E.164 form of a phone number; ValueError naming `what` when it is not one."""
    raw = number.strip()
    if raw.startswith("whatsapp:"):
        raw = raw[len("whatsapp:") :]
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"{what} {number!r} is not an E.164 phone number ({error})") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"{what} {number!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class ConversationRef:
    channel: str  # sms | whatsapp | console
    provider: str  # the channel plug-in that carries it: twilio | whatsapp_cloud | console
    number: str  # our virtual number, E.164
    customer: str  # the customer's number, E.164 (or a WhatsApp user id)

    @property
    def id(self) -> str:
        return conversation_id(self.channel, self.number, self.customer)


def conversation_id(channel: str, number: str, customer: str) -> str:
    """One conversation per channel, virtual number and customer: also the Temporal workflow id."""
    return f"{CONVERSATION_PREFIX}:{channel}:{number}:{customer}"


def conversation_prefix(channel: str, number: str) -> str:
    """The start of every conversation id on one of our numbers (for listing them)."""
    return f"{CONVERSATION_PREFIX}:{channel}:{number}:"


@dataclass(frozen=True)
class ConversationAddress:
    channel: str
    number: str
    customer: str


def parse_conversation_id(conversation: str) -> ConversationAddress:
    """The parts of a conversation id; ValueError when it is not one."""
    parts = conversation.split(":", 3)
    if len(parts) != 4 or parts[0] != CONVERSATION_PREFIX or not all(parts[1:]):
        raise ValueError(f"{conversation!r} is not a conversation id ({CONVERSATION_PREFIX}:channel:number:customer)")
    return ConversationAddress(parts[1], parts[2], parts[3])
