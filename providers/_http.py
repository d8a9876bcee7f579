"""What every channel that calls a provider's HTTP API shares."""

from __future__ import annotations

import math
from collections.abc import Mapping


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a `Retry-After` header given in seconds (the HTTP-date form is ignored)."""
    try:
        seconds = float(headers.get("retry-after", ""))
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
