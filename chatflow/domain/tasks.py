"""Stopping background tasks for sure.

On Python 3.11, `asyncio.wait_for` (which redis-py wraps around every command that has a socket
timeout) can swallow a cancellation that arrives as its inner call completes (CPython
gh-86296), so a loop cancelled once may carry on. Cancel until the tasks are done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

RECANCEL_EVERY = 0.1  # seconds


async def stop_tasks(tasks: Collection[asyncio.Task[object]] | Collection[asyncio.Task[None]]) -> None:
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_EVERY)
    await asyncio.gather(*tasks, return_exceptions=True)  # collect their outcomes: no "never retrieved"
