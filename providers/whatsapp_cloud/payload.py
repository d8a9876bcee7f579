"""Reading the shapes of Meta's webhook JSON, and naming where in it something is wrong.

Every problem is a ValueError whose message points into the payload (`entry[0].changes[1]...`),
so Meta's webhook debugger shows which part was refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from chatflow.domain.addresses import e164
from providers._messages import received_now

# A business-scoped user id (BSUID) such as "US.13491208655302741918".
USER_ID = re.compile(r"^[A-Za-z]{2}\.[A-Za-z0-9.]{1,120}$")


def objects(parent: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    items = parent.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError(f"{where}.{key} must be a list of objects")
    return items


def object_at(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{where}.{key} must be an object")
    return value


def customer_for(phone: str, user_id: str, where: str) -> str:
    """The customer's E.164 number, or their business-scoped user id when Meta withholds the number.

    Users with a WhatsApp username may write without revealing their number; their BSUID is
    stable, and the Cloud API accepts it as a recipient, so the conversation is keyed by it.
    """
    if phone:
        if phone.isdigit():
            return e164(f"+{phone}", what=f"{where} sender")
        user_id = user_id or phone  # a BSUID in the phone field
    if USER_ID.match(user_id):
        return user_id
    if user_id:
        raise ValueError(f"{where}: {user_id!r} is neither a phone number nor a WhatsApp user id")
    raise ValueError(f"{where} names no sender (neither a phone number nor a user_id)")


def timestamp(value: object) -> str:
    """Meta's Unix timestamp as ISO 8601; now when it is missing or nonsense."""
    try:
        return datetime.fromtimestamp(int(str(value)), UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        return received_now()
