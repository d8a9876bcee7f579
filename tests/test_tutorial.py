"""A newcomer's first hour, as the README tells it, in a project of their own.

A folder outside this repository gets the README's `chatflow.toml`, flow module, test file and
replay test (docs/flows.md), verbatim. Then, with the installed package only (the `chatflow`
script and `python -m pytest`, no PYTHONPATH, no CHATFLOW_* variables, none of this repository's
pytest settings), the README's commands as written: list and draw the flow, run its test, run
`chatflow dev --reload`, start the flow as a journey with curl and chat with it, record its
history, start it again from the chat, and replay it.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chatflow.runtime.processes import free_port
from tests.chatflow.runtime.devstack import DevStack, descendants
from tests.test_docs import snippet

BIN = Path(sys.executable).parent
CHATFLOW = str(BIN / "chatflow")
NUMBER = "+15005557768"  # the console number chatflow dev binds to appointment_reminder
CUSTOMER = "+14155550100"


def project(root: Path) -> Path:
    """The README's files, copied as they are."""
    folder = root / "my-reminders"
    folder.mkdir()
    (folder / "chatflow.toml").write_text(snippet("first-flow-config"))
    (folder / "reminders.py").write_text(snippet("first-flow"))
    (folder / "test_reminders.py").write_text(snippet("first-test"))
    (folder / "test_replay.py").write_text(snippet("replay-test"))
    return folder


def commands(text: str) -> list[str]:
    """A snippet's commands, as written: an indented line goes on the command above it."""
    found: list[str] = []
    for line in text.splitlines():
        if line[:1].isspace() and found:
            found[-1] += "\n" + line
        elif line and not line.startswith("#"):
            found.append(line)
    return found


def command_of(line: str) -> list[str]:
    """A command line without its comment, as argv."""
    return shlex.split(line, comments=True)


def user_env(home: Path) -> dict[str, str]:
    """A shell's environment: PATH (with the installed `chatflow`), HOME, the locale. Nothing else."""
    env = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    env["PATH"] = f"{BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin"
    env["HOME"] = str(home)
    return env


def run(folder: Path, env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)


def shell(folder: Path, env: dict[str, str], script: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Lines of a snippet, as a user's shell runs them (stopping at the first that fails)."""
    return run(folder, env, "bash", "-c", "set -eo pipefail\n" + script, timeout=timeout)


def chatting(folder: Path, env: dict[str, str], line: str) -> subprocess.Popen[str]:
    """`chatflow chat ...` as the line has it, its input and output ours."""
    return subprocess.Popen(
        [CHATFLOW, *command_of(line)[1:]],
        cwd=folder,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_dev(dev: subprocess.Popen[bytes]) -> int:
    """Ctrl-C to a `chatflow dev`, its exit status; it and everything it started killed if it hangs."""
    children = descendants(dev.pid)
    dev.send_signal(signal.SIGINT)
    try:
        return dev.wait(60)
    except subprocess.TimeoutExpired:
        dev.kill()
        for child in children:
            os.kill(child, signal.SIGKILL)
        raise


def read_until(process: subprocess.Popen[str], needle: str, seen: list[str], timeout: float = 60) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip("\n"))
        if needle in line:
            return
    raise AssertionError(f"no {needle!r} in chat output: {seen}")


def test_a_flow_written_tested_versioned_and_chatted_with_in_a_project_of_ones_own(tmp_path: Path) -> None:
    folder = project(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    env = user_env(home)
    flows, graph, dev_line, export, curl, chat_line = commands(snippet("first-flow-commands"))

    listed = shell(folder, env, flows)
    assert listed.returncode == 0, listed.stderr
    # As the README's comment has it: the flow's own 6 steps.
    (shown,) = re.findall(r"chatflow flows +# (appointment_reminder .*?)  Confirm", flows)
    assert listed.stdout.splitlines()[1].split()[:3] == shown.split() == ["appointment_reminder", "1", "6"]

    drawn = shell(folder, env, graph)
    assert drawn.returncode == 0, drawn.stderr
    svg = (folder / "reminder.svg").read_text()
    assert "<svg" in svg and ">confirmed<" in svg
    drawn = run(folder, env, CHATFLOW, "graph", "appointment_reminder")
    assert drawn.returncode == 0, drawn.stderr
    assert drawn.stdout.startswith("stateDiagram-v2\n    [*] --> ask\n")
    assert "    ask --> confirmed: reply:yes" in drawn.stdout
    assert "    expired : expired (built-in End)" in drawn.stdout  # wait_again's on_timeout

    # The README's install line finds what chatflow's `dev` extra installed: nothing downloaded.
    tested = shell(folder, env, snippet("first-test-run"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert re.search(r"\b1 passed\b", tested.stdout), tested.stdout
    assert "warning" not in tested.stdout.split("test session starts")[1].lower(), tested.stdout

    port = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    assert command_of(dev_line) == [CHATFLOW.rsplit("/", 1)[1], "dev", "--reload"]
    ports = ["--temporal-port", str(free_port()), "--ui-port", str(free_port()), "--redis-port", str(free_port())]
    dev = subprocess.Popen(
        [CHATFLOW, *command_of(dev_line)[1:], "--port", str(port), *ports],
        cwd=folder,
        env=env,
        stdout=(logs / "dev.out").open("wb"),
        stderr=(logs / "dev.err").open("wb"),
    )
    stack = DevStack(dev, f"http://127.0.0.1:{port}", "", logs / "dev.out", logs / "dev.err")
    try:
        stack.wait_ready()
        banner = stack.stdout.read_text()
        assert (
            f"chatflow chat appointment_reminder --url {stack.url}   (console number {NUMBER}, bound by chatflow dev)"
            in banner
        )
        key = (folder / ".chatflow" / "api-key").read_text().strip()
        assert f"key: {key}" in banner

        # The journey the README starts with curl, as written (on this test's port).
        started = shell(folder, env, f"{export}\n{curl}".replace("http://127.0.0.1:8000", stack.url))
        assert started.returncode == 0, started.stderr
        conversation = json.loads(started.stdout)["id"]
        assert json.loads(started.stdout)["status"] == "started"
        for _ in range(100):  # the prompt is on its way
            view = httpx.get(f"{stack.url}/console/conversations/{conversation}", timeout=10)
            if view.status_code == 200 and view.json()["step"] == "ask" and not view.json()["busy"]:
                break
            time.sleep(0.1)

        # No --url: chat finds the chatflow dev of this folder.
        chat = chatting(folder, env, chat_line)
        assert chat.stdin is not None
        seen: list[str] = []
        read_until(chat, "Hi Ana, confirm your appointment tomorrow at 10:00? Reply YES or NO.", seen)
        assert (
            seen[0]
            == f"Chatting with flow appointment_reminder on {NUMBER} at {stack.url} as {CUSTOMER}. Type a message; Ctrl-D ends."
        )
        chat.stdin.write("yes\n")
        chat.stdin.flush()
        read_until(chat, "appointment_reminder> See you tomorrow!", seen)
        read_until(chat, "-- conversation ended: completed", seen)
        # Ctrl-D: the chat ends at once, not when its long poll would have.
        ended_at = time.monotonic()
        out, err = chat.communicate("", timeout=60)
        assert chat.returncode == 0, err
        assert time.monotonic() - ended_at < 15  # a hang guard, well under the 20 s long poll
        assert "conversation ended" not in out  # said once

        recorded = run(folder, env, CHATFLOW, "record", "appointment_reminder")
        assert recorded.returncode == 0, recorded.stderr
        (path,) = re.findall(r"^wrote (histories/appointment_reminder-v1-\S+\.json)$", recorded.stdout, re.M)
        first = (folder / path).read_text()
        again = run(folder, env, CHATFLOW, "record", "appointment_reminder")
        assert again.stdout.strip() == f"kept  {path}" and (folder / path).read_text() == first

        # Started again from the chat, as the README's next snippet does: the bot speaks first.
        (start_line,) = commands(snippet("first-flow-chat-start"))
        chat = chatting(folder, env, start_line)
        read_until(chat, "Hi Ana, confirm your appointment tomorrow at 10:00? Reply YES or NO.", seen)
        out, err = chat.communicate("no\n", timeout=60)
        assert chat.returncode == 0, err
        assert "appointment_reminder> Your appointment is cancelled." in out
    finally:
        code = stop_dev(dev)
    assert code == 0, stack.output()

    replayed = run(folder, env, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_replay.py")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert re.search(r"\b1 passed\b", replayed.stdout), replayed.stdout
