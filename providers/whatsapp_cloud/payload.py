"""Reading the shapes of Meta's webhook JSON, and naming where in it something is wrong.

Every problem is a ValueError whose message points into the payload (`entry[0].changes[1]...`),
so the log line that drops that part says which part it was and why.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from providers._messages import received_now, text
from providers._whatsapp import USER_ID, whatsapp_customer

__all__ = ["USER_ID", "Drop", "customer_for", "items", "object_at", "timestamp"]


# Told where a part of the payload is and why it is dropped.
Drop = Callable[[str, str], None]


def items(parent: dict[str, Any], key: str, where: str, drop: Drop) -> list[tuple[str, dict[str, Any]]]:
    """The objects of the list `parent[key]`, each with where it is (`entry[0].changes[1]`); a
    missing list is empty. Whatever is not an object (or a list that is not one) goes to `drop`,
    and the objects around it are kept."""
    found = parent.get(key, [])
    path = f"{where}.{key}" if where else key
    if not isinstance(found, list):
        drop(path, f"{path} must be a list of objects")
        return []
    objects = []
    for index, item in enumerate(found):
        if isinstance(item, dict):
            objects.append((f"{path}[{index}]", item))
        else:
            drop(f"{path}[{index}]", f"{path}[{index}] must be an object")
    return objects


def object_at(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """`parent[key]` when it is an object, else an empty one (for optional parts)."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def customer_for(phone: str, user_id: str, where: str) -> str:
    """The customer's E.164 number, or their business-scoped user id when Meta withholds the number.

    Users with a WhatsApp username may write without revealing their number; their BSUID is
    stable, and the Cloud API accepts it as a recipient, so the conversation is keyed by it.
    """
    return whatsapp_customer(phone, user_id, f"{where} sender")


def timestamp(value: object) -> str:
    """Meta's Unix timestamp as ISO 8601; now when it is missing or nonsense."""
    try:
        return datetime.fromtimestamp(int(text(value)), UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        return received_now()
