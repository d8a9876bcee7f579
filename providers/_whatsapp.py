"""Who a WhatsApp customer is, the same way on every door (Twilio's and Meta's Cloud API).

A customer is their phone number in E.164 or, when WhatsApp withholds the number (users with a
username), their business-scoped user id (BSUID), which is stable for our business portfolio and
which both Twilio and the Cloud API accept as a recipient. A username is neither: users change
it, and no API sends to it, so it never keys a conversation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from chatflow.domain.addresses import AddressKind, e164
from chatflow.domain.masking import mask_phone, mask_text
from providers._messages import shown

# Meta's BSUID: the user's ISO 3166 country code, a period and up to 128 letters and digits
# ("US.13491208655302741918"); a parent BSUID, shared by linked business portfolios, has "ENT."
# after the country ("US.ENT.11815799212886844830").
USER_ID = re.compile(r"[A-Za-z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")
# A phone number as providers write it: Meta's bare digits, Twilio's "+14155550100", or a person's
# "+1 (415) 555-0100".
PHONE = re.compile(r"\+?[0-9][0-9 ().\-]*")


def is_user_id(value: str) -> bool:
    return USER_ID.fullmatch(value) is not None


def whatsapp_customer(address: str, user_id: str, what: str) -> str:
    """The customer that `address` (a phone number or a BSUID, with or without `whatsapp:`) and
    `user_id` (the BSUID reported beside it, or "") name; ValueError naming `what` otherwise.

    The phone number wins when both are given, so a conversation started by phone stays the one
    the customer writes to.
    """
    address = address.strip().removeprefix("whatsapp:")
    if PHONE.fullmatch(address):
        return e164("+" + address.lstrip("+"), what=what)
    if is_user_id(address):
        return address
    if is_user_id(user_id):
        return user_id
    if address or user_id:
        named = " or ".join(shown(part) for part in (address, user_id) if part)
        raise ValueError(f"{what} {named} is neither a phone number nor a WhatsApp user id")
    raise ValueError(f"{what} is missing: no sender (neither a phone number nor a user_id)")


def whatsapp_address(value: str) -> str:
    """A WhatsApp customer or sender in normal form: a phone number in E.164 or a user id."""
    return whatsapp_customer(value, "", "WhatsApp address")


def mask_whatsapp(value: str) -> str:
    """A phone number masked as phone numbers are; a user id keeps its country and its ends."""
    if is_user_id(value):
        head, _, tail = value.rpartition(".")
        return f"{head}.{mask_text(tail, 2, 2)}"
    return mask_phone(value)


def _rate_class(value: str) -> str:
    return "whatsapp"


# Messages per second Meta lets one business number send (its default throughput).
RATES: Mapping[str, float] = {"whatsapp": 80.0}

# `whatsapp:+14155550100`, `whatsapp:US.13491208655302741918`: the kind of address on the
# whatsapp channel, whichever door (Twilio's, the Cloud API) it comes through.
WHATSAPP = AddressKind("whatsapp", whatsapp_address, mask_whatsapp, _rate_class, RATES)


# WhatsApp's customer-service window: free-form messages only this long after the customer wrote.
SERVICE_WINDOW = timedelta(hours=24)


def within_window(last_inbound_at: str, now: datetime) -> bool:
    """True while free-form messages are allowed: the customer wrote less than 24 hours ago."""
    if not last_inbound_at:
        return False
    try:
        last = datetime.fromisoformat(last_inbound_at)
    except ValueError:
        return False
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return now - last < SERVICE_WINDOW
