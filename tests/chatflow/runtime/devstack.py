"""Run `chatflow dev` as a subprocess for end-to-end tests, on free ports, and look at it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from chatflow.runtime.processes import free_port

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT = 90.0
DEMO_CONFIG = """\
[flows]
modules = ["conversations.demo"]

[[numbers]]
number = "+15005550006"
provider = "console"
channel = "console"
flow = "demo"
"""


def chatflow_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "chatflow", *args]


def chatflow_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATFLOW_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from the kernel's /proc/<pid>/task/<tid>/children lists."""
    found: set[int] = set()
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    pending.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "zombie" not in state


@dataclass
class DevStack:
    process: subprocess.Popen[bytes]
    url: str
    temporal_address: str
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"chatflow dev exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"chatflow dev not ready:\n{self.output()}")

    def say(self, text: str, customer: str = "+14155550100") -> None:
        answer = httpx.post(
            f"{self.url}/console/messages",
            json={"from": customer, "to": "+15005550006", "text": text},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text

    def read(self, customer: str = "+14155550100", after: str = "0", wait: float = 0) -> tuple[list[str], str]:
        answer = httpx.get(
            f"{self.url}/console/messages",
            params={"customer": customer, "after": after, "wait": wait},
            timeout=wait + 10,
        ).json()
        return [m["text"] for m in answer["messages"]], answer["next"]

    def wait_for(self, needle: str, customer: str = "+14155550100", after: str = "0") -> list[str]:
        """Every bot message after `after` up to the one containing `needle`."""
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            texts, after = self.read(customer, after, wait=5)
            seen += texts
            if any(needle in text for text in texts):
                return seen
        raise AssertionError(f"no bot message with {needle!r}; got {seen}")

    def read_metrics(self, url: str = "") -> str:
        """The web app's metrics, or those at `url`."""
        return httpx.get(url or f"{self.url}/metrics", timeout=10).text

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        return self.process.wait(60)


def start_dev(
    data_dir: Path, logs: Path, *extra: str, config_text: str = DEMO_CONFIG, env: dict[str, str] | None = None
) -> DevStack:
    """`chatflow dev` with `config_text` as chatflow.toml, in the folder above `data_dir` (flow
    modules there are found), with `env` added to its environment. A start refused because a
    port picked free was taken meanwhile (another test process, or the Temporal server's own
    ports beside the one given) is tried again on new ports."""
    config = data_dir.parent / "chatflow.toml"
    config.write_text(config_text)
    logs.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 4):
        stack = _started(data_dir, logs, config, extra, env)
        try:
            stack.wait_ready()
        except BaseException:
            children = descendants(stack.process.pid)
            stack.process.kill()
            stack.process.wait()
            for child in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            if attempt < 3 and stack.process.returncode == 2 and "in use" in stack.output():
                continue
            raise
        return stack
    raise AssertionError("unreachable")


def _started(data_dir: Path, logs: Path, config: Path, extra: tuple[str, ...], env: dict[str, str] | None) -> DevStack:
    port, temporal_port = free_port(), free_port()
    stdout, stderr = logs / f"dev-{port}.out", logs / f"dev-{port}.err"
    process = subprocess.Popen(
        chatflow_command(
            "dev",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--temporal-port",
            str(temporal_port),
            "--ui-port",
            str(free_port()),
            "--redis-port",
            str(free_port()),
            *extra,
        ),
        stdout=stdout.open("wb"),
        stderr=stderr.open("wb"),
        env=chatflow_env(**(env or {})),
        cwd=data_dir.parent,
    )
    return DevStack(process, f"http://127.0.0.1:{port}", f"127.0.0.1:{temporal_port}", stdout, stderr)
