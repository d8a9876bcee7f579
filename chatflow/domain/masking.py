"""How a customer's number is shown where it need not be whole: logs, the dashboard."""

from __future__ import annotations

KEEP_START = 4  # country code and area code, mostly: enough to tell numbers apart while debugging
KEEP_END = 2


def mask(number: str) -> str:
    """`+14155550100` -> `+1415*****00` (a short number keeps less of itself)."""
    prefix = "+" if number.startswith("+") else ""
    digits = number[len(prefix) :]
    start, end = (KEEP_START, KEEP_END) if len(digits) >= 10 else (1, 1) if len(digits) >= 4 else (0, 0)
    return prefix + digits[:start] + "*" * (len(digits) - start - end) + digits[len(digits) - end :]
