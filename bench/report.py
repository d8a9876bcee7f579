"""The Markdown report of a run: the machine, each scenario's table, the targets."""

from __future__ import annotations

from typing import Any


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def burst_table(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    cells = []
    for path, b in rows:
        done = b["seconds_to_all_answered"]
        cells.append(
            [
                path,
                b["offered_per_second"],
                b["achieved_per_second"],
                b["sent"],
                b["refused"],
                f"{b['ack']['p50_ms']} / {b['ack']['p99_ms']}",
                f"{f['ack']['p50_ms']} / {f['ack']['p99_ms']}" if (f := b.get("floor_beside")) else "—",
                f"{b['answer']['p50_ms']} / {b['answer']['p99_ms']}",
                f"{b['answered_once_in_order']}/{b['sent']}",
                b["duplicates"],
                b["out_of_order"],
                b["unanswered"],
                done if done is not None else "—",
                _cpu(b.get("cpu_ms_per_customer")),
            ]
        )
    return _table(
        [
            "path",
            "rate/s",
            "achieved/s",
            "sent",
            "refused",
            "ack p50 / p99 ms",
            "floor beside: ack p50 / p99 ms",
            "first reply p50 / p99 ms",
            "answered once in order",
            "dup",
            "out of order",
            "unanswered",
            "all answered s",
            "CPU ms per customer: web / worker / server",
        ],
        cells,
    )


def _cpu(cpu: dict[str, float] | None) -> str:
    return f"{cpu['web']} / {cpu['worker']} / {cpu['server']}" if cpu else "—"


def cost_table(cost: dict[str, Any]) -> str:
    rows = []
    for what, key in (
        ("typical conversation", "conversation"),
        ("first message", "first_message"),
        ("per message", "per_message"),
    ):
        for path in ("baseline", "ours"):
            c = cost[path][key]
            rows.append([what, path, c["events"], c["workflow_tasks"], c["actions"], c["actions_grouped"]])
    for name, price in cost["prices"].items():
        rows.append(
            [
                f"1,000 conversations at ${price['per_million']:g}/M",
                "baseline / ours",
                "",
                "",
                f"${cost['baseline']['per_1000_conversations'][name]} / ${cost['ours']['per_1000_conversations'][name]}",
                f"${cost['baseline']['per_1000_conversations_grouped'][name]} / "
                f"${cost['ours']['per_1000_conversations_grouped'][name]}",
            ]
        )
    return "\n".join(
        _table(["", "path", "history events", "workflow tasks", "actions", "actions (grouped)"], rows)
    ).rstrip()


def render(results: dict[str, Any]) -> str:
    run, machine = results["run"], results["machine"]
    out = [
        f"# chatflow benchmark ({run['sizes']['name']} run, {run['started']})",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_mib']} MiB, {machine['os']}; "
        f"Python {machine['python']}, temporalio {machine['temporalio']}, {machine['temporal_cli']}. "
        f"Load average (1, 5, 15 min) at the start {machine.get('load_at_start')}, at the end "
        f"{machine.get('load_at_end')}: anything else running on the machine slows every figure.",
        f"Everything on this one machine: Temporal dev server (in memory), chatflow's worker and app (uvicorn, one "
        f"process each), the baseline's worker and app (likewise), Valkey, the fake Twilio API and the load "
        f"generator. History limit {run['history_limit']} events (both paths). "
        f"Run took {run['seconds']} s.",
        "",
    ]
    if throughput := results.get("throughput"):
        out += [
            "## 1. Inbound throughput and latency",
            "",
            "Closed loop: each of *c* senders posts again as soon as it is answered. Every request is a "
            "new customer's first message, a signed Twilio webhook. `baseline` is the hand-written "
            "minimal Temporal app (`bench/baseline`: its webhook signal-with-starts the workflow before "
            "answering); `ours` is chatflow's app (Redis edge, buffer, forwarder).",
            "",
        ]
        rows = []
        for base, ours, step in zip(
            throughput["steps"]["baseline"], throughput["steps"]["ours"], throughput["per_step"], strict=True
        ):
            rows.append(
                [
                    base["concurrency"],
                    base["per_second"],
                    ours["per_second"],
                    step["throughput_ratio"],
                    f"{base['p50_ms']} / {base['p95_ms']} / {base['p99_ms']}",
                    f"{ours['p50_ms']} / {ours['p95_ms']} / {ours['p99_ms']}",
                    base["errors"] + ours["errors"],
                ]
            )
        out += _table(
            ["c", "baseline req/s", "ours req/s", "ratio", "baseline p50/p95/p99 ms", "ours p50/p95/p99 ms", "errors"],
            rows,
        )
        sat = throughput["saturation"]
        out += [
            f"Saturation: ours {sat['ours']['per_second']} req/s (c={sat['ours']['concurrency']}), baseline "
            f"{sat['baseline']['per_second']} req/s (c={sat['baseline']['concurrency']}): **ratio {throughput['throughput_ratio']}**. "
            f"Steps after which the worker had not drained its backlog: {throughput['steps_with_worker_backlog']}.",
            "",
        ]
    if answer := results.get("answer"):
        out += [
            "## 2. Time to answer",
            "",
            f"Open loop, {answer['baseline']['offered_per_second']} new conversations/s; from posting the webhook to "
            "the first reply reaching the fake Twilio API.",
            "",
        ]
        rows = [
            [
                mode,
                answer[mode]["messages"],
                answer[mode]["answer"]["p50_ms"],
                answer[mode]["answer"]["p95_ms"],
                answer[mode]["answer"]["p99_ms"],
                answer[mode]["request"]["p50_ms"],
                answer[mode]["errors"],
            ]
            for mode in ("baseline", "ours")
        ]
        out += _table(["path", "messages", "answer p50 ms", "p95 ms", "p99 ms", "request p50 ms", "errors"], rows)
        out += [f"p50 ratio {answer['p50_ratio']}, **p99 ratio {answer['p99_ratio']}**.", ""]
    if long := results.get("long_conversation"):
        out += [
            "## 3. One long conversation",
            "",
            f"{long['messages']} messages through the app, one at a time; median time to answer over the ten "
            f"messages up to each mark. {long['runs']} runs (continue-as-new every ~{long['history_limit']} events).",
            "",
        ]
        out += _table(["message", "answer ms (median of last 10)"], [[k, v] for k, v in long["answer_ms_at"].items()])
        out += [f"Last mark / first mark: **{long['last_vs_first_ratio']}**.", ""]
    if waiting := results.get("waiting"):
        out += [
            "## 4. Many waiting conversations",
            "",
            f"{waiting['conversations']} conversations opened and left waiting at the menu; worker cache "
            f"{waiting['max_cached_workflows']} workflows. Worker RSS {waiting['worker_rss_kib_baseline'] // 1024} -> "
            f"{waiting['worker_rss_kib_after'] // 1024} MiB: {waiting['rss_kib_per_conversation']} KiB per conversation, "
            f"{waiting['rss_kib_per_cached_conversation']} KiB per cached one.",
            "",
        ]
        rows = [
            [kind, waiting[kind]["n"], waiting[kind]["p50_ms"], waiting[kind]["p95_ms"], waiting[kind]["max_ms"]]
            for kind in ("cached", "evicted")
        ]
        out += _table(["conversation", "asked", "answer p50 ms", "p95 ms", "max ms"], rows)
        out += [f"Evicted / cached (p50): **{waiting['evicted_vs_cached_ratio']}**.", ""]
    if burst := results.get("burst"):
        out += [
            "## 5. Burst",
            "",
            f"Open loop from a load generator in its own process: new customers' first messages (signed "
            f"webhooks) at each rate for {burst['seconds']} s. Refused: a non-2xx answer, or none within "
            f"15 s (Twilio's webhook timeout). Acknowledgement and first reply are timed from when each "
            f"request was due. *All answered*: from the first request to the last customer's menu at the "
            f"fake provider (— when some customer never was).",
            "",
        ]
        pairs = [
            (path, figures)
            for index in range(len(burst["rates"]))
            for path in ("baseline", "ours")
            for figures in burst[path][index : index + 1]
        ]
        out += burst_table(pairs)
        if burst.get("floor"):
            out += [
                "The floor (`bench.floor`): a bare Starlette endpoint doing one XADD, served by uvicorn as "
                "chatflow's app is. *Beside* (in the table above): the same burst posted to it at the same "
                "times as each path's, so it shares the machine with that path as the path's own webhook "
                "does; *quiet* (below): alone, with nothing else to do on the machine.",
                "",
            ]
            floor_rows = [
                [
                    "floor, quiet",
                    f["offered_per_second"],
                    f["sent"],
                    f["refused"],
                    f"{f['ack']['p50_ms']} / {f['ack']['p99_ms']}",
                ]
                for f in burst["floor"]
            ]
            out += _table(["path", "rate/s", "sent", "refused", "ack p50 / p99 ms"], floor_rows)
    if floor := results.get("temporal_floor"):
        out += [
            "## 10. Temporal's floor",
            "",
            "`bench.temporal_floor`: a workflow that only is signal-with-started, runs one workflow task (in "
            "the SDK's sandbox) and waits on a timer, on a dev server of its own; then the same sending two "
            "messages by local activity through httpx to the fake provider. CPU per conversation, less "
            "what the processes use idle: the least a path with a workflow per conversation spends.",
            "",
        ]
        rows = [
            [
                name.replace("_", " "),
                f["conversations"],
                f["rate"],
                ", ".join(f"{role} {ms}" for role, ms in f["cpu_ms_per_conversation"].items()),
                f["total_ms"],
            ]
            for name, f in floor.items()
        ]
        out += _table(["floor", "conversations", "rate/s", "CPU ms per conversation", "total ms"], rows)
    if sustained := results.get("sustained"):
        out += [
            "## 7. Sustained rate",
            "",
            f'Open loop for {sustained["step_seconds"]} s a step, half first messages, half replies ("1") from '
            f"customers waiting at the menu; the rate doubles while answer p99 stays under "
            f"{sustained['p99_limit_ms'] / 1000:g} s with no error, then bisects.",
            "",
        ]
        rows = [
            [
                path,
                step["rate"],
                step["messages"],
                step["answer"]["p50_ms"],
                step["answer"]["p99_ms"],
                step["errors"],
                "pass" if step["passed"] else "**fail**",
            ]
            for path in ("baseline", "ours")
            for step in sustained[path]["steps"]
        ]
        out += _table(["path", "msg/s", "messages", "answer p50 ms", "p99 ms", "errors", ""], rows)
        ratio = sustained["ratio"]
        out += [
            f"Highest rate passed: ours {sustained['ours']['best_per_second']} msg/s"
            f"{' (never failed: the cap)' if sustained['ours']['capped'] else ''}, baseline "
            f"{sustained['baseline']['best_per_second']} msg/s"
            f"{' (never failed: the cap)' if sustained['baseline']['capped'] else ''}: "
            f"**ratio {ratio if ratio is not None else '—'}**.",
            "",
        ]
    if cost := results.get("cost"):
        out += [
            "## 8. Cost",
            "",
            "Read from the workflows' histories (`bench/history.py`; the counting rule is in docs/benchmarks.md). "
            '*Conversation*: "hi" (greeting, menu), then "3" (talk to a person: one reply, the end), the '
            'whole closed history. *Per message*: "1" (opening hours, menu) '
            f"{cost['ours']['messages']} times in one conversation, the history's growth divided by the messages. "
            "*Actions* counts every marker (local activity or patch) as one action; *grouped* counts a "
            "workflow task's markers as one, as Temporal's pricing page words it.",
            "",
        ]
        out += [cost_table(cost), ""]
        for path in ("baseline", "ours"):
            kinds = ", ".join(f"{k} {v}" for k, v in cost[path]["conversation"]["actions_by_kind"].items())
            per = ", ".join(f"{k} {v}" for k, v in cost[path]["per_message"]["actions_by_kind"].items())
            out += [f"- {path}: conversation actions: {kinds}; per message: {per}."]
        out += [""]
        for name, price in cost["prices"].items():
            out += [f"- `{name}`: {price['source']}."]
        out += [""]
    if startup := results.get("startup"):
        out += [
            "## 6. Start-up",
            "",
            f"Median of {startup['runs']}: the bare `temporal server start-dev` until a client can count "
            f"workflows, {startup['raw_seconds']} s; `chatflow dev` (that server, Valkey, the worker and the "
            f"web app) until `/readyz` answers 200, {startup['ours_seconds']} s: ratio **{startup['ratio']}**.",
            "",
        ]
    if dev := results.get("dev_burst"):
        out += [
            "## 9. Burst against `chatflow dev`",
            "",
            f"`chatflow dev` (ready in {dev['ready_seconds']} s: Temporal dev server on SQLite, Valkey, worker and "
            f"web app, each a process of its own), a Twilio number bound to the demo flow, the same bursts as 5 "
            f"({dev['seconds']} s each).",
            "",
        ]
        out += burst_table([("chatflow dev", figures) for figures in dev["ours"]])
    if results.get("plots"):
        out += ["## Plots", ""] + [f"![{name}]({name})" for name in results["plots"]] + [""]
    out += ["## Targets", ""]
    rows = [
        [t["target"], t["value"], {True: "met", False: "**missed**", None: "not measured"}[t["met"]], t["note"]]
        for t in results["targets"]
    ]
    out += _table(["target", "measured", "", "note"], rows)
    if results.get("skipped"):
        out += ["Skipped: " + "; ".join(results["skipped"]), ""]
    return "\n".join(out)
