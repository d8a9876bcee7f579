"""Who talks to whom: phone numbers in E.164, and the conversation id built and read in one place.

A conversation is one customer on one of our numbers on one channel; its id is also the id of
its Temporal workflow, so the API, the logs and Temporal's own UI all name it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

CONVERSATION_PREFIX = "chat"


# Digits that WhatsApp (and old dialling habits) put after a country code and that the E.164 form
# of the number no longer has: Mexico's mobile "1" (abolished in 2019; WhatsApp still reports
# 521 + 10 digits, Meta's Cloud API answers with 52 + 10 digits) and Argentina's mobile "9" when it
# comes with the national "15" as well (+54 9 11 15 2345 6789, which is +54 9 11 2345 6789).
# Argentina's "9" on its own stays: +54 9 ... is the E.164 form of a mobile and WhatsApp's wa_id.
LEGACY_MOBILE_DIGIT = {52: "1", 54: "9"}


def e164(number: str, *, what: str = "number") -> str:
    """The E.164 form of a phone number; ValueError naming `what` when it is not one.

    One customer is one number whichever form a provider reports (`whatsapp:` prefix, spaces,
    Mexico's WhatsApp "521..." or the Cloud API's "52..."), so that they map to one conversation.
    """
    raw = number.strip()
    if raw.startswith("whatsapp:"):
        raw = raw[len("whatsapp:") :]
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"{what} {number!r} is not an E.164 phone number ({error})") from None
    if not phonenumbers.is_possible_number(parsed):
        parsed = _without_legacy_mobile_digit(parsed) or parsed
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"{what} {number!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _without_legacy_mobile_digit(parsed: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber | None:
    """The number without its country's legacy mobile digit, when that makes a possible number."""
    digit = LEGACY_MOBILE_DIGIT.get(parsed.country_code or 0)
    national = str(parsed.national_number or "")
    if digit is None or not national.startswith(digit):
        return None
    try:
        candidate = phonenumbers.parse(f"+{parsed.country_code}{national[1:]}", None)
    except phonenumbers.NumberParseException:
        return None
    return candidate if phonenumbers.is_possible_number(candidate) else None


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
