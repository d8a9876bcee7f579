"""What the figures were measured on: they mean little without it."""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Any

from chatflow.runtime.binaries import temporal_cli


def _memory_mib() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _temporal_version() -> str:
    try:
        out = subprocess.run([temporal_cli(), "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError) as error:
        return f"unknown ({error})"


def describe() -> dict[str, Any]:
    import temporalio

    return {
        "cores": os.cpu_count() or 0,
        "memory_mib": _memory_mib(),
        "cpu": platform.processor() or platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "temporalio": temporalio.__version__,
        "temporal_cli": _temporal_version(),
        "load_at_start": load(),
    }


def load() -> list[float]:
    """The machine's load averages (1, 5, 15 min): other work on the cores shows in every figure."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used (user + system), in seconds: 0.0 once it is gone.

    Unlike times, CPU per message hardly depends on what else shares the cores, so it is the
    figure to compare changes by on a busy machine."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # utime and stime are fields 14 and 15 of stat(5); 12 and 13 after the name's ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def temporal_server_pid(port: int) -> int | None:
    """The pid of the Temporal dev server listening on `port`, None when not found."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                args = cmdline.read().split(b"\0")
        except OSError:
            continue
        if b"start-dev" in args and str(port).encode() in args:
            return int(entry)
    return None
