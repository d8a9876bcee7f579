"""The Markdown report of a run: the machine, each scenario's table, the targets."""

from __future__ import annotations

from typing import Any


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def render(results: dict[str, Any]) -> str:
    run, machine = results["run"], results["machine"]
    out = [
        f"# chatflow benchmark ({run['sizes']['name']} run, {run['started']})",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_mib']} MiB, {machine['os']}; "
        f"Python {machine['python']}, temporalio {machine['temporalio']}, {machine['temporal_cli']}.",
        f"Everything on this one machine: Temporal dev server (in memory), worker, app (uvicorn, one process), "
        f"fake Twilio API and load generator. History limit {run['history_limit']} events. "
        f"Run took {run['seconds']} s.",
        "",
    ]
    if throughput := results.get("throughput"):
        out += ["## 1. Inbound throughput and latency", "",
                "Closed loop: each of *c* senders posts again as soon as it is answered. Every request is a "
                "new customer's first message (signal-with-start that starts a workflow). `raw` is the "
                "temporalio client's signal-with-start from the bench process; `ours` is a signed Twilio "
                "webhook to the app.", ""]
        rows = []
        for raw, ours, step in zip(throughput["steps"]["raw"], throughput["steps"]["ours"], throughput["per_step"], strict=True):
            rows.append([raw["concurrency"], raw["per_second"], ours["per_second"], step["throughput_ratio"],
                         f"{raw['p50_ms']} / {raw['p95_ms']} / {raw['p99_ms']}",
                         f"{ours['p50_ms']} / {ours['p95_ms']} / {ours['p99_ms']}",
                         raw["errors"] + ours["errors"]])
        out += _table(["c", "raw req/s", "ours req/s", "ratio", "raw p50/p95/p99 ms", "ours p50/p95/p99 ms", "errors"], rows)
        sat = throughput["saturation"]
        out += [f"Saturation: ours {sat['ours']['per_second']} req/s (c={sat['ours']['concurrency']}), raw "
                f"{sat['raw']['per_second']} req/s (c={sat['raw']['concurrency']}): **ratio {throughput['throughput_ratio']}**. "
                f"Steps after which the worker had not drained its backlog: {throughput['steps_with_worker_backlog']}.", ""]
    if answer := results.get("answer"):
        out += ["## 2. Time to answer", "",
                f"Open loop, {answer['raw']['offered_per_second']} new conversations/s; from posting the message to "
                "the first reply reaching the fake Twilio API.", ""]
        rows = [[mode, answer[mode]["messages"], answer[mode]["answer"]["p50_ms"], answer[mode]["answer"]["p95_ms"],
                 answer[mode]["answer"]["p99_ms"], answer[mode]["request"]["p50_ms"], answer[mode]["errors"]]
                for mode in ("raw", "ours")]
        out += _table(["path", "messages", "answer p50 ms", "p95 ms", "p99 ms", "request p50 ms", "errors"], rows)
        out += [f"p50 ratio {answer['p50_ratio']}, **p99 ratio {answer['p99_ratio']}**.", ""]
    if long := results.get("long_conversation"):
        out += ["## 3. One long conversation", "",
                f"{long['messages']} messages through the app, one at a time; median time to answer over the ten "
                f"messages up to each mark. {long['runs']} runs (continue-as-new every ~{long['history_limit']} events).", ""]
        out += _table(["message", "answer ms (median of last 10)"], [[k, v] for k, v in long["answer_ms_at"].items()])
        out += [f"Last mark / first mark: **{long['last_vs_first_ratio']}**.", ""]
    if waiting := results.get("waiting"):
        out += ["## 4. Many waiting conversations", "",
                f"{waiting['conversations']} conversations opened and left waiting at the menu; worker cache "
                f"{waiting['max_cached_workflows']} workflows. Worker RSS {waiting['worker_rss_kib_baseline'] // 1024} -> "
                f"{waiting['worker_rss_kib_after'] // 1024} MiB: {waiting['rss_kib_per_conversation']} KiB per conversation, "
                f"{waiting['rss_kib_per_cached_conversation']} KiB per cached one.", ""]
        rows = [[kind, waiting[kind]["n"], waiting[kind]["p50_ms"], waiting[kind]["p95_ms"], waiting[kind]["max_ms"]]
                for kind in ("cached", "evicted")]
        out += _table(["conversation", "asked", "answer p50 ms", "p95 ms", "max ms"], rows)
        out += [f"Evicted / cached (p50): **{waiting['evicted_vs_cached_ratio']}**.", ""]
    if startup := results.get("startup"):
        out += ["## 6. Start-up", "",
                f"Median of {startup['runs']}: the bare `temporal server start-dev` until a client can count "
                f"workflows, {startup['raw_seconds']} s; `chatflow dev` (that server, Valkey, the worker and the "
                f"web app) until `/readyz` answers 200, {startup['ours_seconds']} s: ratio **{startup['ratio']}**.", ""]
    out += ["## Targets", ""]
    rows = [[t["target"], t["value"], {True: "met", False: "**missed**", None: "not measured"}[t["met"]], t["note"]]
            for t in results["targets"]]
    out += _table(["target", "measured", "", "note"], rows)
    if results.get("skipped"):
        out += ["Skipped: " + "; ".join(results["skipped"]), ""]
    return "\n".join(out)
