"""The bench runs end to end at tiny sizes, and what it writes is what it measured.

Timings depend on the machine, so no thresholds: the checks are that every scenario ran at the
sizes asked for, that its figures agree with each other (counts add up, the best rate is a rate
that passed, the cost per 1,000 conversations is the actions times the price), and that the
targets, the Markdown report, the printed summary and the plots were all made from those figures.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import report, targets

ROOT = Path(__file__).resolve().parents[2]
PATHS = ("baseline", "ours")


def positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def check_burst(rows: list[dict[str, Any]], rates: list[float], seconds: float) -> None:
    assert [row["offered_per_second"] for row in rows] == rates
    for row in rows:
        assert row["sent"] == max(1, round(row["offered_per_second"] * seconds))
        assert row["accepted"] + row["refused"] == row["sent"] == row["ack"]["n"] + row["refused"]
        assert sum(row["refused_by"].values()) == row["refused"]
        assert row["answered_once_in_order"] <= row["answered"] <= row["sent"]
        assert row["unanswered"] == row["sent"] - row["answered"]
        assert row["all_answered_once_in_order"] == (row["answered_once_in_order"] == row["sent"])
        if row["seconds_to_all_answered"] is not None:
            assert row["answered"] == row["sent"] and positive(row["seconds_to_all_answered"])
        assert positive(row["achieved_per_second"])
        if row["accepted"]:
            assert 0 < row["ack"]["p50_ms"] <= row["ack"]["p99_ms"] <= row["ack"]["max_ms"]


def check_tally(tally: dict[str, Any]) -> None:
    assert positive(tally["events"]) and positive(tally["actions"])
    assert abs(sum(tally["events_by_type"].values()) - tally["events"]) < 0.05
    assert abs(sum(tally["actions_by_kind"].values()) - tally["actions"]) < 0.05
    assert tally["workflow_tasks"] == tally["events_by_type"].get("WORKFLOW_TASK_STARTED", 0)
    assert tally["actions_grouped"] <= tally["actions"]


def test_tiny_bench_writes_every_scenario(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,  # a hang guard; a busy machine is slow
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    markdown = (tmp_path / "latest.md").read_text()
    sizes = results["run"]["sizes"]
    assert sizes["name"] == "tiny"

    assert positive(results["machine"]["cores"]) and results["machine"]["temporal_cli"].startswith("temporal version")

    throughput = results["throughput"]
    for mode in PATHS:
        assert [step["concurrency"] for step in throughput["steps"][mode]] == sizes["concurrency"]
        best = max(throughput["steps"][mode], key=lambda step: step["per_second"])
        assert throughput["saturation"][mode]["per_second"] == best["per_second"]
        assert all(positive(throughput["saturation"][mode][k]) for k in ("p50_ms", "p95_ms", "p99_ms"))
    assert positive(throughput["throughput_ratio"])

    answer = results["answer"]
    for mode in PATHS:
        assert answer[mode]["errors"] == 0
        assert all(positive(answer[mode]["answer"][k]) for k in ("p50_ms", "p95_ms", "p99_ms"))
    assert positive(answer["p99_ratio"])

    long = results["long_conversation"]
    assert [int(mark) for mark in long["answer_ms_at"]] == sizes["long_marks"]
    assert all(positive(ms) for ms in long["answer_ms_at"].values()) and positive(long["last_vs_first_ratio"])

    waiting = results["waiting"]
    assert waiting["conversations"] == sizes["waiting"] and positive(waiting["worker_rss_kib_after"])
    assert waiting["cached"]["n"] == waiting["evicted"]["n"] == sizes["probes"]
    assert positive(waiting["evicted_vs_cached_ratio"])

    burst = results["burst"]
    for mode in PATHS:
        check_burst(burst[mode], sizes["burst_rates"], sizes["burst_seconds"])
        for row in burst[mode]:
            cpu = row["cpu_ms_per_customer"]
            assert sorted(cpu) == ["server", "web", "worker"] and min(cpu.values()) >= 0 and sum(cpu.values()) > 0
    floors = {
        "quiet": burst["floor"],
        **{f"beside {mode}": [row["floor_beside"] for row in burst[mode]] for mode in PATHS},
    }
    for rows in floors.values():
        assert [row["offered_per_second"] for row in rows] == sizes["burst_rates"]
        for row in rows:
            assert row["sent"] == row["ack"]["n"] + row["refused"] and row["ack"]["n"] > 0
    floor = results["temporal_floor"]
    for name, sends in (("no_sends", 0), ("two_sends", 2)):
        figures = floor[name]
        assert (
            figures["conversations"] == sizes["floor_conversations"]
            and figures["sent"] >= sends * figures["conversations"]
        )
        assert figures["sampled_without_a_completed_task"] == 0
        assert positive(figures["cpu_ms_per_conversation"]["server"]) and positive(figures["total_ms"])
    dev = results["dev_burst"]
    check_burst(dev["ours"], sizes["dev_burst_rates"], sizes["burst_seconds"])
    assert positive(dev["ready_seconds"])

    sustained = results["sustained"]
    for mode in PATHS:
        steps = sustained[mode]["steps"]
        assert steps[0]["rate"] == sizes["sustained_start"]
        assert all(step["rate"] <= sizes["sustained_max"] for step in steps)
        for step in steps:
            assert step["messages"] == step["first_messages"] + step["replies"] + step["errors"]
            assert step["passed"] == (
                step["errors"] == 0 and step["answer"]["n"] > 0 and step["answer"]["p99_ms"] < sustained["p99_limit_ms"]
            )
        assert sustained[mode]["best_per_second"] == max((s["rate"] for s in steps if s["passed"]), default=0.0)
        assert sustained[mode]["capped"] == all(step["passed"] for step in steps)
    if sustained["baseline"]["best_per_second"]:
        expected = round(sustained["ours"]["best_per_second"] / sustained["baseline"]["best_per_second"], 3)
        assert sustained["ratio"] == expected

    cost = results["cost"]
    for mode in PATHS:
        assert len(cost[mode]["conversation_actions_each"]) == sizes["cost_conversations"]
        assert cost[mode]["messages"] == sizes["cost_messages"]
        for key in ("conversation", "first_message", "per_message"):
            check_tally(cost[mode][key])
        median = cost[mode]["conversation_actions_median"]
        for name, price in cost["prices"].items():
            assert cost[mode]["per_1000_conversations"][name] == round(median * 1000 * price["per_million"] / 1e6, 4)
    assert cost["per_message_actions_ratio"] == round(
        cost["ours"]["per_message"]["actions"] / cost["baseline"]["per_message"]["actions"], 3
    )

    startup = results["startup"]
    assert positive(startup["raw_seconds"]) and positive(startup["ours_seconds"])

    # The targets are those figures, checked; every one was measured.
    assert results["targets"] == json.loads(json.dumps(targets.check(results)))
    assert all(t["met"] is not None for t in results["targets"])

    # The report and the printed summary show those same figures.
    for heading in (
        "Inbound throughput",
        "Time to answer",
        "long conversation",
        "waiting conversations",
        "## 5. Burst",
        "## 6. Start-up",
        "## 7. Sustained",
        "## 8. Cost",
        "## 9. Burst against",
        "Targets",
    ):
        assert heading in markdown
    assert report.cost_table(cost) in markdown and report.cost_table(cost) in done.stdout
    for t in results["targets"]:
        assert f"  {t['target']}: {t['value']} " in done.stdout
    for rows in (burst["baseline"], burst["ours"], dev["ours"]):
        for row in rows:
            assert f"{row['answered_once_in_order']}/{row['sent']} answered once in order" in done.stdout

    # Plots beside the results when matplotlib is installed (the bench extra), else said so.
    if importlib.util.find_spec("matplotlib"):
        assert sorted(results["plots"]) == ["burst.png", "sustained.png"]
        for name in results["plots"]:
            assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f"![{name}]({name})" in markdown
    else:
        assert results["plots"] == [] and any("matplotlib" in why for why in results["skipped"])
    assert any("payment-recovery" in why for why in results["skipped"])
