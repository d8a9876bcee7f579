"""Durations as people read them: "7 s", "2 min 5 s", "3 h 20 min", "2 d 4 h"."""

from __future__ import annotations

from datetime import timedelta

UNITS = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def in_words(duration: timedelta) -> str:
    """The two largest units that are not zero; under a second, milliseconds."""
    total = duration.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total < 1:
        return f"{sign}{round(total * 1000)} ms"
    rest = round(total)
    parts: list[tuple[int, str]] = []
    for unit, size in UNITS:
        count, rest = divmod(rest, size)
        if count or parts:
            parts.append((count, unit))
    shown = [f"{count} {unit}" for count, unit in parts[:2] if count]
    return sign + " ".join(shown)
