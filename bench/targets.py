"""The issue's targets, each checked against a run's figures: met or missed, and by how much."""

from __future__ import annotations

from typing import Any


def check(results: dict[str, Any]) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []

    def target(name: str, value: float | None, limit: float, at_least: bool, note: str = "") -> None:
        if value is None:
            targets.append({"target": name, "value": None, "limit": limit, "met": None, "note": "not measured"})
            return
        met = value >= limit if at_least else value <= limit
        targets.append({"target": name, "value": value, "limit": limit, "met": met, "note": note})

    throughput = results.get("throughput")
    target("inbound throughput ours/raw >= 0.9", throughput and throughput["throughput_ratio"], 0.9, True)
    answer = results.get("answer")
    target("time-to-answer p99 ours/raw <= 1.5", answer and answer["p99_ratio"], 1.5, False)
    long = results.get("long_conversation")
    if long:
        marks = list(long["answer_ms_at"])
        note = f"measured at message {marks[-1]} vs {marks[0]} (the target names message 10,000)"
    else:
        note = ""
    target("answer at a late message / message 10 <= 1.2", long and long["last_vs_first_ratio"], 1.2, False, note)
    waiting = results.get("waiting")
    target("evicted / cached answer (p50) <= 3", waiting and waiting["evicted_vs_cached_ratio"], 3.0, False)
    return targets
