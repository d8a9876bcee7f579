"""`chatflow dev` end to end: a real subprocess with its embedded Temporal and Valkey."""

import json
import os
import re
import signal
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.chatflow.runtime.devstack import alive, descendants, start_dev

CUSTOMER = "+14155550100"
MENU = "What can I do for you?"


def test_dev_runs_everything_stops_cleanly_and_keeps_conversations(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    stack = start_dev(data_dir, tmp_path / "logs")
    try:
        children = descendants(stack.process.pid)
        names = {Path(f"/proc/{pid}/exe").resolve().name for pid in children}
        assert {"temporal", "valkey-server"} <= names
        # The worker in a process of its own, as `chatflow worker` runs in production.
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in children]
        assert any(b"worker" in command and b"chatflow" in command for command in commands)

        stack.say("hello")
        assert stack.wait_for(MENU)[0] == "Hi! I'm the chatflow demo bot."
        stack.say("2")
        assert stack.wait_for("order number")[-1] == "What's your order number?"

        # What chat and record find: this dev's URL and Temporal, while it runs; the API's key,
        # readable by its owner only.
        state = json.loads((data_dir / "dev.json").read_text())
        assert (state["web"], state["temporal"]) == (stack.url, stack.temporal_address)
        assert (data_dir / "api-key").stat().st_mode & 0o777 == 0o600

        families = {f.name: f for f in text_string_to_metric_families(stack.read_metrics())}
        webhooks = families["chatflow_webhooks"].samples
        assert any(s.labels == {"provider": "console", "outcome": "accepted"} and s.value >= 2 for s in webhooks)
        assert families["chatflow_active_conversations"].samples[0].value >= 1
        assert "chatflow_webhook_duration_seconds" in families
        # The worker's own metrics, where dev.json and the banner say.
        assert state["worker_metrics"] in stack.output()
        worker = {f.name: f for f in text_string_to_metric_families(stack.read_metrics(state["worker_metrics"]))}
        sends = worker["chatflow_sends"].samples
        assert any(s.labels == {"provider": "console", "status": "delivered"} and s.value >= 3 for s in sends)
    finally:
        code = stack.stop(signal.SIGINT)
    assert code == 0, stack.output()
    assert "stopped" in stack.output()
    assert not (data_dir / "dev.json").exists()
    assert [pid for pid in children if alive(pid)] == []

    # No full phone number in anything the process logged (uvicorn's access log included).
    logged = stack.stderr.read_text()
    assert "14155550100" not in logged
    assert re.search(r"(\+|%2B)1415\*{5}00", logged)

    # The same data folder: the conversation goes on where it was, and its history is there.
    again = start_dev(data_dir, tmp_path / "logs")
    try:
        earlier, cursor = again.read()
        assert earlier[0] == "Hi! I'm the chatflow demo bot." and earlier[-1] == "What's your order number?"
        again.say("A-77")
        assert again.wait_for("arrives tomorrow", after=cursor)[0] == "Order A-77 is on its way and arrives tomorrow."
    finally:
        assert again.stop(signal.SIGTERM) == 0, again.output()


def test_dev_reports_a_taken_port_without_traceback(tmp_path: Path) -> None:
    import socket
    import subprocess

    from tests.chatflow.runtime.devstack import DEMO_CONFIG, chatflow_command, chatflow_env

    (tmp_path / "chatflow.toml").write_text(DEMO_CONFIG)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            chatflow_command("dev", "--port", str(port), "--data-dir", str(tmp_path / "data")),
            capture_output=True,
            text=True,
            env=chatflow_env(),
            cwd=tmp_path,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"error: --port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_servers_die_with_a_killed_dev(tmp_path: Path) -> None:
    """Even SIGKILL, which chatflow dev cannot handle, leaves no server behind."""
    stack = start_dev(tmp_path / "data", tmp_path / "logs")
    children = descendants(stack.process.pid)
    assert children
    stack.process.kill()
    stack.process.wait()
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in children if alive(pid)] == []


def test_a_worker_that_dies_stops_dev_with_the_reason_and_its_servers(tmp_path: Path) -> None:
    stack = start_dev(tmp_path / "data", tmp_path / "logs")
    children = descendants(stack.process.pid)
    worker = int(re.search(r"Worker +pid (\d+)", stack.output()).group(1))  # type: ignore[union-attr]
    os.kill(worker, signal.SIGKILL)
    assert stack.process.wait(60) == 2  # the CLI's exit code for an error it names
    assert "the worker stopped (exit code -9)" in stack.output()
    assert [pid for pid in children if alive(pid)] == []


def test_dev_binds_a_console_number_to_every_flow_the_config_does_not() -> None:
    from chatflow.domain.addresses import Address
    from chatflow.domain.config import Config, NumberBinding, Settings
    from chatflow.runtime.dev import console_bindings
    from conversations.demo import Demo
    from conversations.payment_recovery import PaymentRecovery
    from conversations.purchase_followup import PurchaseFollowup

    flows = [Demo, PaymentRecovery, PurchaseFollowup]
    bound = NumberBinding(Address("console", "+15005550006"), "console", "console", "demo")
    added = console_bindings(Config([bound], [], Settings()), flows)
    assert sorted(b.flow for b in added) == ["payment_recovery", "purchase_followup"]
    assert all(re.fullmatch(r"\+1500555\d{4}", b.number) and b.provider == "console" for b in added)
    # The same numbers every time (conversations kept in the data folder stay on them)...
    assert console_bindings(Config([bound], [], Settings()), flows) == added
    # ...and never one the config uses already.
    taken = NumberBinding(Address("tel", added[0].number), "twilio", "sms", "demo")
    moved = console_bindings(Config([bound, taken], [], Settings()), flows)
    assert moved[0].flow == added[0].flow and moved[0].number != added[0].number
    assert moved[1] == added[1]


def test_dev_refuses_a_taken_server_port_and_a_data_folder_in_use(tmp_path: Path) -> None:
    """It never talks to whoever else answers on a port asked for, nor shares a data folder."""
    import socket
    import subprocess

    from chatflow.runtime.processes import folder_lock
    from tests.chatflow.runtime.devstack import DEMO_CONFIG, chatflow_command, chatflow_env

    (tmp_path / "chatflow.toml").write_text(DEMO_CONFIG)

    def dev(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            chatflow_command("dev", "--port", "0", *args),
            capture_output=True,
            text=True,
            env=chatflow_env(),
            cwd=tmp_path,
            timeout=60,
        )

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for flag in ("--temporal-port", "--redis-port"):
            done = dev(flag, str(port), "--data-dir", str(tmp_path / "a"))
            assert done.returncode == 2, done.stderr
            assert f"error: {flag} {port} on 127.0.0.1 is already in use" in done.stderr
    with folder_lock(tmp_path / "b"):
        done = dev("--data-dir", str(tmp_path / "b"))
    assert done.returncode == 2
    assert "is in use by another chatflow dev" in done.stderr and "Traceback" not in done.stderr


def test_dev_keeps_its_data_private_and_prints_no_secret_from_the_environment(tmp_path: Path) -> None:
    import subprocess

    import redis

    from chatflow.runtime.binaries import valkey_server
    from chatflow.runtime.processes import free_port

    password, key = "hunter2-redis-password", "env-api-key-never-printed"
    port = free_port()
    valkey = subprocess.Popen(
        [valkey_server(), "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password, "--save", ""],
        stdout=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        for _ in range(200):
            try:
                redis.Redis(port=port, password=password).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        url = f"redis://:{password}@127.0.0.1:{port}/0"
        data_dir = tmp_path / "data"
        stack = start_dev(data_dir, tmp_path / "logs", env={"CHATFLOW_API_KEY": key, "CHATFLOW_REDIS_URL": url})
        try:
            printed = stack.output()
            assert "key: from CHATFLOW_API_KEY" in printed
            assert f"Redis         redis://:***@127.0.0.1:{port}/0 (CHATFLOW_REDIS_URL)" in printed
            assert key not in printed and password not in printed
            assert data_dir.stat().st_mode & 0o777 == 0o700
            assert (data_dir / "dev.json").stat().st_mode & 0o777 == 0o600
            assert (data_dir / "temporal.db").stat().st_mode & 0o777 == 0o600
            assert "api_key_file" not in json.loads((data_dir / "dev.json").read_text())
        finally:
            assert stack.stop(signal.SIGINT) == 0, stack.output()
        assert key not in stack.output() and password not in stack.output()
    finally:
        valkey.terminate()
        valkey.wait(30)


def test_a_data_folder_made_before_is_made_private_and_another_folder_left_alone(tmp_path: Path) -> None:
    from chatflow.runtime.dev import private_folder

    older = tmp_path / "older"
    older.mkdir(mode=0o755)
    (older / "temporal.db").write_bytes(b"")
    older.chmod(0o755)
    private_folder(older)
    assert older.stat().st_mode & 0o777 == 0o700

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    private_folder(shared)  # --data-dir naming a folder of other things: not ours to change
    assert shared.stat().st_mode & 0o777 == 0o755

    new = tmp_path / "new" / "data"
    private_folder(new)
    assert new.stat().st_mode & 0o777 == 0o700
