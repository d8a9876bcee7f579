"""The bench runs end to end at tiny sizes and writes every scenario's figures.

Only the shape of the results is checked: timings depend on the machine, so no thresholds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def test_tiny_bench_writes_every_scenario(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    report = (tmp_path / "latest.md").read_text()

    assert positive(results["machine"]["cores"]) and results["machine"]["temporal_cli"].startswith("temporal version")

    throughput = results["throughput"]
    for mode in ("raw", "ours"):
        assert positive(throughput["saturation"][mode]["per_second"])
        assert all(positive(throughput["saturation"][mode][k]) for k in ("p50_ms", "p95_ms", "p99_ms"))
    assert positive(throughput["throughput_ratio"])

    answer = results["answer"]
    for mode in ("raw", "ours"):
        assert answer[mode]["errors"] == 0
        assert all(positive(answer[mode]["answer"][k]) for k in ("p50_ms", "p95_ms", "p99_ms"))
    assert positive(answer["p99_ratio"])

    long = results["long_conversation"]
    assert all(positive(ms) for ms in long["answer_ms_at"].values()) and positive(long["last_vs_first_ratio"])

    waiting = results["waiting"]
    assert positive(waiting["worker_rss_kib_after"])
    assert positive(waiting["cached"]["p50_ms"]) and positive(waiting["evicted"]["p50_ms"])
    assert positive(waiting["evicted_vs_cached_ratio"])

    assert {t["target"] for t in results["targets"] if t["met"] is not None} == {t["target"] for t in results["targets"]}
    for heading in ("Inbound throughput", "Time to answer", "long conversation", "waiting conversations", "Targets"):
        assert heading in report

    startup = results["startup"]
    assert positive(startup["raw_seconds"]) and positive(startup["ours_seconds"])
    assert "## 6. Start-up" in report
