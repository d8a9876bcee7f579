"""Background loops that must outlive any outage of the stores they poll."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

Loop = Callable[[], Coroutine[Any, Any, None]]
RESTART_AFTER = (0.1, 0.5, 1.0, 2.0, 5.0)  # seconds, then 5 s for as long as the store stays away


def supervised(name: str, loop: Loop) -> Loop:
    """`loop`, restarted after any error (Redis or Temporal away), backing off, so one outage
    never stops it until the next deploy."""

    async def _run() -> None:
        failures = 0
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - whatever the store raised, keep the loop alive
                delay = RESTART_AFTER[min(failures, len(RESTART_AFTER) - 1)]
                failures += 1
                log.warning("%s stopped (%s: %s); restarting in %.1f s", name, type(error).__name__, error, delay)
                await asyncio.sleep(delay)

    return _run
