"""`chatflow chat` against a running `chatflow dev`, as a user types in a terminal."""

import subprocess
import time
from pathlib import Path

from tests.chatflow.runtime.devstack import chatflow_command, chatflow_env, start_dev


def _read_until(process: subprocess.Popen[str], needle: str, lines: list[str]) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if needle in line:
            return
    raise AssertionError(f"no {needle!r} in chat output: {lines}")


def test_chat_talks_to_a_flow_and_shows_the_bots_messages(tmp_path: Path) -> None:
    stack = start_dev(tmp_path / "data", tmp_path / "logs")
    try:
        chat = subprocess.Popen(
            chatflow_command("chat", "demo", "--url", stack.url, "--as", "+14155550199"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=chatflow_env(),
        )
        assert chat.stdin is not None
        lines: list[str] = []
        _read_until(chat, "Chatting with flow demo on +15005550006", lines)
        chat.stdin.write("hello\n")
        chat.stdin.flush()
        _read_until(chat, "3. Talk to a person", lines)
        assert "demo> Hi! I'm the chatflow demo bot." in lines
        assert "      1. Opening hours" in lines
        # Then end of input (Ctrl-D): replies still on their way are shown before it ends.
        out, err = chat.communicate("1\n", timeout=60)
        assert "demo> We're open 9:00-18:00, Monday to Saturday." in out.splitlines()
        assert chat.returncode == 0, err

        # Again, naming the number rather than its flow: the prompt names the flow bound to it,
        # the conversation so far comes first, and Ctrl-D ends at once (no 20 s long poll to sit out).
        again = subprocess.Popen(
            chatflow_command("chat", "purchase_followup", "--number", "+15005550006", "--url", stack.url, "--as", "+14155550199"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=chatflow_env(),
        )
        lines = []
        _read_until(again, "Chatting with flow demo on +15005550006", lines)
        assert lines == [
            "(+15005550006 is bound to flow demo, not purchase_followup)",
            "Chatting with flow demo on +15005550006 as +14155550199. Type a message; Ctrl-D ends.",
        ]
        _read_until(again, "demo> We're open 9:00-18:00, Monday to Saturday.", lines)
        assert lines[2] == "demo> Hi! I'm the chatflow demo bot."
        started = time.monotonic()
        out, err = again.communicate("", timeout=60)
        assert again.returncode == 0, err
        assert time.monotonic() - started < 5
    finally:
        stack.stop()


def test_chat_explains_an_unbound_flow(tmp_path: Path) -> None:
    stack = start_dev(tmp_path / "data", tmp_path / "logs")
    try:
        done = subprocess.run(
            chatflow_command("chat", "payment_recovery", "--url", stack.url),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=chatflow_env(),
            timeout=60,
        )
    finally:
        stack.stop()
    assert done.returncode == 2
    assert "error: no console number is bound to flow 'payment_recovery' (console numbers: +15005550006 -> demo)" in done.stderr
    assert "is 'payment_recovery' one of their flows (`chatflow flows`)?" in done.stderr
    assert "Traceback" not in done.stderr
