"""PNG plots of the burst and sustained results, beside latest.json (matplotlib, the bench extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLOURS = {"baseline": "tab:gray", "ours": "tab:blue", "chatflow dev": "tab:green"}


def draw(results: dict[str, Any], out: Path) -> tuple[list[Path], str]:
    """The plots written, and why none were ("" when nothing was in the way)."""
    if not results.get("burst") and not results.get("sustained") and not results.get("dev_burst"):
        return [], ""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "PNG plots: matplotlib is not installed (pip install -e '.[bench]')"
    written = []
    if results.get("burst") or results.get("dev_burst"):
        written.append(_burst(plt, results, out / "burst.png"))
    if results.get("sustained"):
        written.append(_sustained(plt, results["sustained"], out / "sustained.png"))
    return written, ""


def _burst(plt: Any, results: dict[str, Any], path: Path) -> Path:
    series: dict[str, list[dict[str, Any]]] = {}
    if burst := results.get("burst"):
        series.update({path: burst[path] for path in ("baseline", "ours") if burst[path]})
    if dev := results.get("dev_burst"):
        series["chatflow dev"] = dev["ours"]
    figure, (ack, done, lost) = plt.subplots(1, 3, figsize=(15, 4.5))
    for name, rows in series.items():
        rates = [r["offered_per_second"] for r in rows]
        style = {"color": COLOURS[name], "marker": "o", "label": name}
        ack.plot(rates, [max(r["ack"]["p99_ms"], 0.1) for r in rows], **style)
        ack.plot(rates, [max(r["ack"]["p50_ms"], 0.1) for r in rows], linestyle=":", color=COLOURS[name], marker=".")
        finished = [
            (r["offered_per_second"], r["seconds_to_all_answered"])
            for r in rows
            if r["seconds_to_all_answered"] is not None
        ]
        if finished:
            done.plot(*zip(*finished, strict=True), **style)
        lost.plot(rates, [r["sent"] - r["answered_once_in_order"] for r in rows], **style)
        lost.plot(rates, [r["refused"] for r in rows], linestyle="--", color=COLOURS[name], marker="x")
    burst = results.get("burst") or {}
    floors = [
        ("floor, quiet", "tab:orange", burst.get("floor") or []),
        ("floor beside ours", "tab:red", [r["floor_beside"] for r in burst.get("ours") or [] if "floor_beside" in r]),
    ]
    for label, colour, floor in floors:
        if floor:
            ack.plot(
                [r["offered_per_second"] for r in floor],
                [max(r["ack"]["p99_ms"], 0.1) for r in floor],
                color=colour,
                marker="s",
                linestyle="--",
                label=label,
            )
    seconds = (results.get("burst") or results.get("dev_burst") or {}).get("seconds", 0)
    ack.axhline(50, color="tab:red", linewidth=0.8, label="target p99 50 ms")
    ack.set(
        xscale="log",
        yscale="log",
        xlabel="new customers / s",
        ylabel="ms",
        title="webhook acknowledgement (p99 solid, p50 dotted)",
    )
    done.set(
        xscale="log",
        xlabel="new customers / s",
        ylabel="s",
        title=f"until every customer answered ({seconds:g} s burst)",
    )
    lost.set(
        xscale="log",
        xlabel="new customers / s",
        ylabel="customers",
        title="not answered once in order (solid), refused (dashed)",
    )
    worst = max((r["sent"] - r["answered_once_in_order"] for rows in series.values() for r in rows), default=0)
    lost.set_ylim(-0.05 * max(worst, 1), 1.1 * max(worst, 1))
    for axis in (ack, done, lost):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _sustained(plt: Any, sustained: dict[str, Any], path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name in ("baseline", "ours"):
        steps = sorted(sustained[name]["steps"], key=lambda s: s["rate"])
        rates = [s["rate"] for s in steps]
        axis.plot(
            rates,
            [max(s["answer"]["p99_ms"], 0.1) for s in steps],
            color=COLOURS[name],
            marker="o",
            label=f"{name} p99 (best {sustained[name]['best_per_second']:g} msg/s)",
        )
        axis.plot(
            rates,
            [max(s["answer"]["p50_ms"], 0.1) for s in steps],
            color=COLOURS[name],
            linestyle=":",
            marker=".",
            label=f"{name} p50",
        )
        failed = [(s["rate"], max(s["answer"]["p99_ms"], 0.1)) for s in steps if not s["passed"]]
        if failed:
            axis.scatter(*zip(*failed, strict=True), color="tab:red", marker="x", zorder=3)
    axis.axhline(sustained["p99_limit_ms"], color="tab:red", linewidth=0.8, label="p99 limit")
    axis.set(
        xscale="log",
        yscale="log",
        xlabel="customer messages / s (half first messages, half replies)",
        ylabel="answer time, ms",
        title="sustained rate: answer time by offered rate (x: failed step)",
    )
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
