"""The webhook CPU probe runs the app's real webhook path (it refuses anything but a 200)."""

from __future__ import annotations

from bench.webhook_cpu import measure, served


async def test_the_probe_measures_accepted_webhooks() -> None:
    result = await measure(20)
    assert result["webhooks"] == 20 and result["cpu_ms"] > 0 and result["wall_ms"] > 0


async def test_the_floor_is_measured_the_same_way() -> None:
    result = await measure(20, floor_app=True)
    assert result["webhooks"] == 20 and result["cpu_ms"] > 0 and result["wall_ms"] > 0


async def test_the_served_app_is_measured_in_its_own_process() -> None:
    # The serving process's CPU is read from /proc in clock ticks (10 ms): 20 webhooks (about
    # 7 ms) could read as none. 400 are about 120 ms, never under a tick.
    result = await served(400)
    assert result["webhooks"] == 400 and result["cpu_ms"] > 0 and result["wall_ms"] > 0
