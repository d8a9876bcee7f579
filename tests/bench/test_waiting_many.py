"""The many-waiting-conversations probe opens real conversations, each waiting at its question,
and times answers from evicted and cached ones."""

from __future__ import annotations

from bench.waiting_many import run


async def test_the_probe_measures_waiting_conversations_and_their_answers() -> None:
    result = await run(40, 10, probes=3)
    assert result["conversations"] == 40
    assert result["cached"]["n"] == 3 and result["evicted"]["n"] == 3
    assert result["rss_kib_after"]["server"] > 0 and result["rss_kib_after"]["worker"] > 0
