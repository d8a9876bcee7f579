"""How an address is shown where it need not be whole: logs, the dashboard.

Each address kind masks its own values (`chatflow.domain.addresses.AddressKind.mask`); these are
the pieces they are built from.
"""

from __future__ import annotations

import re

KEEP_START = 4  # country code and area code, mostly: enough to tell numbers apart while debugging
KEEP_END = 2


def mask(number: str) -> str:
    """`+14155550100` -> `+1415*****00` (a short number keeps less of itself)."""
    prefix = "+" if number.startswith("+") else ""
    digits = number[len(prefix) :]
    start, end = (KEEP_START, KEEP_END) if len(digits) >= 10 else (1, 1) if len(digits) >= 4 else (0, 0)
    return prefix + digits[:start] + "*" * (len(digits) - start - end) + digits[len(digits) - end :]


def mask_phone(text: str) -> str:
    """A phone number in any form chatflow accepts masked as `mask` does, its separators dropped:
    `+1 (415) 555-0100` and `14155550100` -> `+1415*****00` and `1415*****00`; a scheme in front
    (`whatsapp:`, `tel:`) and a URL-encoded plus (`%2B`) are kept."""
    scheme, colon, rest = text.rpartition(":")
    plus = next((sign for sign in ("+", "%2B", "%2b") if rest.startswith(sign)), "")
    return scheme + colon + plus + mask(re.sub(r"\D", "", rest[len(plus) :]))


def mask_text(value: str, keep_start: int = 1, keep_end: int = 0) -> str:
    """`value` with all but its first `keep_start` and last `keep_end` characters hidden, when it
    is long enough to keep them and still hide as many (else all of it is hidden)."""
    if len(value) < 2 * (keep_start + keep_end):
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + value[len(value) - keep_end :]
