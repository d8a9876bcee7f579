"""The issues' targets, each checked against a run's figures: met or missed, and by how much.

The first six are the tracker issue "Throughput and cost of the path users run" (its sustained
3x retired by issue 22 for 1.1x: both paths are bound by the Temporal server's work on two
cores), then issue 22's: cost per conversation, CPU per new customer, each burst's
acknowledgement against the floor's beside it, throughput and the 300/s burst; the last three
came with the first bench (now against the hand-written baseline instead of the raw client).
"""

from __future__ import annotations

from typing import Any

BURST_RATE = 1000  # new customers a second the burst targets name
ACK_P99_MS = 50.0
SUSTAINED_RATIO = 1.1
THROUGHPUT_RATIO = 1.1  # customers answered a second under a burst, ours/baseline
CPU_RATIO = 0.5  # CPU per new customer, web + worker + server, ours/baseline
FLOOR_RATIO = 2.0  # acknowledgement p99, ours / the floor's beside it
FLOOR_BURST_RATE = 300  # the burst issue 22 names for 0 refused and p99 <= ACK_P99_MS


def check(results: dict[str, Any]) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []

    def target(name: str, value: float | None, limit: float, at_least: bool, note: str = "") -> None:
        if value is None:
            targets.append({"target": name, "value": None, "limit": limit, "met": None, "note": note or "not measured"})
            return
        met = value >= limit if at_least else value <= limit
        targets.append({"target": name, "value": value, "limit": limit, "met": met, "note": note})

    top, note = _acknowledged_at(target, results.get("burst") or {}, BURST_RATE)
    target(
        f"burst {BURST_RATE:,}/s: customers not answered once, in order = 0",
        top["sent"] - top["answered_once_in_order"] if top else None,
        0,
        False,
        note
        + (
            f"; duplicates {top['duplicates']}, out of order {top['out_of_order']}, unanswered {top['unanswered']}"
            if top
            else ""
        ),
    )
    _burst_targets(target, results.get("burst") or {}, results.get("temporal_floor") or {})
    sustained = results.get("sustained")
    ratio = sustained and sustained["ratio"]
    sustained_note = ""
    if sustained:
        sustained_note = (
            f"ours {sustained['ours']['best_per_second']:g} msg/s, baseline "
            f"{sustained['baseline']['best_per_second']:g} msg/s"
        )
        if sustained["ours"]["capped"] and sustained["baseline"]["capped"]:
            sustained_note += " (neither ever failed: the search's cap, not their limits)"
        elif sustained["ours"]["capped"]:
            sustained_note += " (ours never failed: the search's cap, not its limit)"
    target(
        f"sustained rate (answer p99 < 2 s) ours/baseline >= {SUSTAINED_RATIO:g}",
        ratio,
        SUSTAINED_RATIO,
        True,
        sustained_note,
    )
    cost = results.get("cost")
    cost_note = ""
    if cost:
        cost_note = (
            f"ours {cost['ours']['per_message']['actions']}, baseline "
            f"{cost['baseline']['per_message']['actions']} actions per message (every marker counted); "
            f"grouped per workflow task: ours {cost['ours']['per_message']['actions_grouped']}, baseline "
            f"{cost['baseline']['per_message']['actions_grouped']}"
        )
    target(
        "billable actions per message ours/baseline <= 1",
        cost and cost["per_message_actions_ratio"],
        1.0,
        False,
        cost_note,
    )
    grouped_note = first_note = ""
    if cost:
        grouped, every = cost["conversation_actions_grouped_median"], "conversation_actions_median"
        grouped_note = (
            f"ours {grouped['ours']}, baseline {grouped['baseline']} (every marker counted: ours "
            f"{cost['ours'][every]}, baseline {cost['baseline'][every]})"
        )
        first_note = (
            f"ours {cost['ours']['first_message']['actions_grouped']}, baseline "
            f"{cost['baseline']['first_message']['actions_grouped']}"
        )
    target(
        "billable actions per typical conversation ours/baseline <= 1 (grouped, as billed)",
        cost and cost["conversation_actions_grouped_ratio"],
        1.0,
        False,
        grouped_note,
    )
    target(
        "billable actions of the first exchange ours/baseline <= 1 (grouped, as billed)",
        cost and cost["first_message_actions_grouped_ratio"],
        1.0,
        False,
        first_note,
    )
    long = results.get("long_conversation")
    if long:
        marks = list(long["answer_ms_at"])
        note = f"measured at message {marks[-1]} vs {marks[0]} (the target names message 10,000 vs 10)"
    else:
        note = ""
    target("answer at message 10,000 / message 10 <= 1.2", long and long["last_vs_first_ratio"], 1.2, False, note)

    throughput = results.get("throughput")
    target("inbound throughput ours/baseline >= 0.9", throughput and throughput["throughput_ratio"], 0.9, True)
    answer = results.get("answer")
    busy = [mode for mode in ("baseline", "ours") if answer and answer.get(f"{mode}_started_quiet") is False]
    target(
        "time-to-answer p99 ours/baseline <= 1.5",
        answer and answer["p99_ratio"],
        1.5,
        False,
        f"{' and '.join(busy)} measured behind an earlier backlog" if busy else "",
    )
    waiting = results.get("waiting")
    target("evicted / cached answer (p50) <= 3", waiting and waiting["evicted_vs_cached_ratio"], 3.0, False)
    return targets


def _burst_targets(target: Any, burst: dict[str, Any], floor: dict[str, Any]) -> None:
    """Issue 22's: the 300/s burst, each rate's acknowledgement against the floor fired beside it,
    CPU per new customer and customers answered per second, ours against the baseline's."""
    ours = {row["offered_per_second"]: row for row in burst.get("ours") or []}
    baseline = {row["offered_per_second"]: row for row in burst.get("baseline") or []}
    at, _ = _acknowledged_at(target, burst, FLOOR_BURST_RATE)
    rate = at["offered_per_second"] if at else FLOOR_BURST_RATE
    for each, row in sorted(ours.items()):
        beside = row.get("floor_beside")
        ratio = beside and row["ack"]["p99_ms"] / max(beside["ack"]["p99_ms"], 0.1)
        target(
            f"burst {each:g}/s: acknowledgement p99 ours / the floor's beside it <= {FLOOR_RATIO:g}",
            ratio and round(ratio, 2),
            FLOOR_RATIO,
            False,
            f"ours {row['ack']['p99_ms']} ms, the floor {beside['ack']['p99_ms']} ms" if beside else "",
        )
    both = sorted(set(ours) & set(baseline))
    cpu = {rate: (_cpu_ms(ours[rate]), _cpu_ms(baseline[rate])) for rate in both}
    # Only where both answered every customer: a path that refused most of a burst spent little
    # on those, and its CPU per customer of the burst would flatter it.
    measured = {
        rate: (o, b)
        for rate, (o, b) in cpu.items()
        if o is not None
        and b
        and ours[rate]["all_answered_once_in_order"]
        and baseline[rate]["all_answered_once_in_order"]
    }
    target(
        f"CPU per new customer (web + worker + server) ours/baseline <= {CPU_RATIO:g}",
        round(max(o / b for o, b in measured.values()), 2) if measured else None,
        CPU_RATIO,
        False,
        "the highest over the rates where both answered every customer; "
        + ", ".join(f"{r:g}/s: ours {o:.1f} ms, baseline {b:.1f} ms ({o / b:.2f})" for r, (o, b) in measured.items())
        + _floor_note(floor, rate, measured.get(rate)),
    )
    answered = {
        rate: (ours[rate]["seconds_to_all_answered"], baseline[rate]["seconds_to_all_answered"])
        for rate in both
        if ours[rate]["seconds_to_all_answered"] and baseline[rate]["seconds_to_all_answered"]
    }
    at_rate = answered.get(rate)
    target(
        f"customers answered a second under the {FLOOR_BURST_RATE}/s burst ours/baseline >= {THROUGHPUT_RATIO:g}",
        at_rate and round(at_rate[1] / at_rate[0], 2),
        THROUGHPUT_RATIO,
        True,
        ", ".join(f"{r:g}/s: all answered in ours {o:g} s, baseline {b:g} s" for r, (o, b) in answered.items()),
    )


def _acknowledged_at(target: Any, burst: dict[str, Any], named: float) -> tuple[dict[str, Any] | None, str]:
    """The burst target named for a rate: none refused, p99 within ACK_P99_MS. A smaller run
    (--quick, --tiny) is checked at its nearest rate, and says so. Ours's row there, and the note."""
    ours = burst.get("ours") or []
    row = min(ours, key=lambda r: abs(r["offered_per_second"] - named)) if ours else None
    note = ""
    if row:
        note = f"at {row['offered_per_second']:g}/s for {burst['seconds']:g} s"
        if row["offered_per_second"] != named:
            note += f" (the target names {named:,g}/s)"
    target(f"burst {named:,g}/s: webhooks refused = 0", row and row["refused"], 0, False, note)
    target(
        f"burst {named:,g}/s: acknowledgement p99 <= {ACK_P99_MS:g} ms",
        row and row["ack"]["p99_ms"],
        ACK_P99_MS,
        False,
        note,
    )
    return row, note


def _cpu_ms(row: dict[str, Any]) -> float | None:
    cpu = row.get("cpu_ms_per_customer")
    return sum(cpu.values()) if cpu else None


def _floor_note(floor: dict[str, Any], rate: float, at_rate: tuple[float, float] | None) -> str:
    """What any design with a Temporal workflow per conversation spends, set against the limit."""
    if not floor:
        return ""
    bare, sending = floor["no_sends"]["total_ms"], floor["two_sends"]["total_ms"]
    note = f"; Temporal's floor (`bench.temporal_floor`): {bare:g} ms a conversation, {sending:g} with two sends"
    if at_rate:
        note += f" ({sending / at_rate[1]:.2f}x the baseline's at {rate:g}/s)"
    return note
