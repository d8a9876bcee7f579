"""The many-waiting-conversations probe opens real conversations, each waiting at its question,
and times answers from evicted and cached ones."""

from __future__ import annotations

from bench.waiting_many import run
from chatflow.runtime.testing import dev_server


async def test_the_probe_measures_waiting_conversations_and_their_answers() -> None:
    result = await run(40, 10, probes=3)
    assert result["conversations"] == 40
    assert result["cached"]["n"] == 3 and result["evicted"]["n"] == 3
    assert result["rss_kib_after"]["server"] > 0 and result["rss_kib_after"]["worker"] > 0


async def test_the_probe_runs_twice_on_one_existing_temporal_server() -> None:
    async with dev_server() as env:
        address = env.client.service_client.config.target_host
        first = await run(40, 10, probes=3, address=address, number="+15005551001")
        # The first run's conversations still wait there: the second must not take them for its own.
        second = await run(40, 10, probes=3, address=address, number="+15005551002")
    for result in (first, second):
        assert result["temporal"] == address and result["cached"]["n"] == 3
        assert "server" not in result["rss_kib_after"]  # not this run's process: not read
