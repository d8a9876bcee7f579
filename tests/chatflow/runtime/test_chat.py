"""`chatflow chat` against a running `chatflow dev`, as a user types in a terminal."""

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chatflow.runtime.processes import free_port
from tests.chatflow.runtime.devstack import DEMO_CONFIG, chatflow_command, chatflow_env, start_dev


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


def test_chat_talks_to_a_flow_and_shows_the_conversation_so_far(tmp_path: Path) -> None:
    data = tmp_path / "data"
    stack = start_dev(data, tmp_path / "logs")
    try:
        # --data-dir: the chat finds the dev's API key there, and shows the customer's own lines.
        chat = subprocess.Popen(
            chatflow_command("chat", "demo", "--url", stack.url, "--as", "+14155550199", "--data-dir", str(data)),
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
        # the conversation so far comes first, the customer's lines too, and Ctrl-D ends at once
        # (no 20 s long poll to sit out).
        again = subprocess.Popen(
            chatflow_command(
                "chat",
                "purchase_followup",
                "--number",
                "+15005550006",
                "--url",
                stack.url,
                "--as",
                "+14155550199",
                "--data-dir",
                str(data),
            ),
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
            f"Chatting with flow demo on +15005550006 at {stack.url} as +14155550199. Type a message; Ctrl-D ends.",
        ]
        _read_until(again, "demo> We're open 9:00-18:00, Monday to Saturday.", lines)
        _read_until(again, "      3. Talk to a person", lines)
        assert lines[2:] == [
            "you> hello",
            "demo> Hi! I'm the chatflow demo bot.",
            *MENU,
            "you> 1",
            "demo> We're open 9:00-18:00, Monday to Saturday.",
            *MENU,
        ]
        started = time.monotonic()
        out, err = again.communicate("", timeout=60)
        assert again.returncode == 0, err
        assert out == ""  # nothing shown twice on the way out
        assert time.monotonic() - started < 15  # well within the 20 s long poll: it was cut short

        # Without the API key (another app's URL than the dev's of --data-dir): the bot's lines only.
        keyless = subprocess.run(
            chatflow_command(
                "chat", "demo", "--url", stack.url, "--as", "+14155550199", "--data-dir", str(tmp_path / "none")
            ),
            input="",
            capture_output=True,
            text=True,
            env=chatflow_env(),
            timeout=60,
        )
        assert keyless.returncode == 0, keyless.stderr
        shown = keyless.stdout.splitlines()
        assert (
            shown[1]
            == "(the bot's messages only; your own lines need the journeys API key: --api-key or CHATFLOW_API_KEY)"
        )
        assert shown[2:4] == ["demo> Hi! I'm the chatflow demo bot.", MENU[0]]
        assert not any(line.startswith("you> ") for line in shown)
    finally:
        stack.stop()


MENU = [
    "demo> What can I do for you?",
    "",
    "      1. Opening hours",
    "      2. Track my order",
    "      3. Talk to a person",
]
# A flow of the user's own, beside chatflow.toml, that speaks first with the journey's data.
GREETING = """\
from chatflow import Ask, End, Flow, anything


class Greeting(Flow):
    \"\"\"Greets a customer by name.\"\"\"

    hello = Ask("Hello {name}! Anything I can do?", branches={anything: "bye"})
    bye = End("completed", "Bye {name}.")
"""
GREETING_CONFIG = DEMO_CONFIG.replace(
    'modules = ["conversations.demo"]', 'modules = ["conversations.demo", "greeting"]'
)


def test_chat_starts_a_journey_and_says_how_it_ended(tmp_path: Path) -> None:
    (tmp_path / "greeting.py").write_text(GREETING)
    data = tmp_path / "data"
    stack = start_dev(data, tmp_path / "logs", config_text=GREETING_CONFIG)
    ada = "+14155550123"
    try:
        chat = subprocess.Popen(
            chatflow_command(
                "chat", "greeting", "--start", "--data", '{"name": "Ada"}', "--as", ada, "--data-dir", str(data)
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=chatflow_env(),
        )
        assert chat.stdin is not None
        lines: list[str] = []
        _read_until(chat, "greeting> Hello Ada! Anything I can do?", lines)
        assert lines[1].startswith(f"-- journey started: flow greeting for {ada}")
        chat.stdin.write("no thanks\n")
        chat.stdin.flush()
        _read_until(chat, "-- conversation ended", lines)
        assert lines[-2:] == ["greeting> Bye Ada.", "-- conversation ended: completed; a message starts a new one"]
        out, err = chat.communicate("", timeout=60)
        assert chat.returncode == 0, err

        # Back to it later: the whole conversation, and that it has ended.
        done = subprocess.run(
            chatflow_command("chat", "greeting", "--as", ada, "--data-dir", str(data)),
            input="",
            capture_output=True,
            text=True,
            env=chatflow_env(),
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[1:] == [
            "greeting> Hello Ada! Anything I can do?",
            "you> no thanks",
            "greeting> Bye Ada.",
            "-- conversation ended: completed; a message starts a new one",
        ]

        # Starting needs the API key, which the chat never sends to an app it was not given it for.
        keyless = subprocess.run(
            chatflow_command("chat", "greeting", "--start", "--url", stack.url, "--data-dir", str(tmp_path / "none")),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=chatflow_env(),
            timeout=60,
        )
        assert keyless.returncode == 2
        assert keyless.stderr.startswith("error: --start needs the journeys API key: --api-key or CHATFLOW_API_KEY")
        # Data the flow cannot use: refused before it starts, naming the key.
        misspelt = subprocess.run(
            chatflow_command(
                "chat", "greeting", "--start", "--as", ada, "--data", '{"nam": "Ada"}', "--data-dir", str(data)
            ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=chatflow_env(),
            timeout=60,
        )
        assert misspelt.returncode == 2
        assert misspelt.stderr.startswith(
            "error: cannot start flow 'greeting': data lacks 'name', which flow 'greeting' reads"
        ), misspelt.stderr
    finally:
        stack.stop()


def chat_once(flow: str, url: str) -> subprocess.CompletedProcess[str]:
    """`chatflow chat FLOW --url URL` with nothing typed."""
    return subprocess.run(
        chatflow_command("chat", flow, "--url", url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=chatflow_env(),
        timeout=60,
    )


def test_chat_explains_an_unbound_flow(tmp_path: Path) -> None:
    stack = start_dev(tmp_path / "data", tmp_path / "logs")
    try:
        done = chat_once("payment_recovery", stack.url)
    finally:
        stack.stop()
    assert done.returncode == 2
    assert (
        f"error: the app at {stack.url}: no console number is bound to flow 'payment_recovery' "
        "(console numbers: +15005550006 -> demo)"
    ) in done.stderr
    assert "start `chatflow dev` in the folder whose chatflow.toml lists 'payment_recovery'" in done.stderr
    assert "is 'payment_recovery' one of their flows (`chatflow flows`)?" in done.stderr
    assert "Traceback" not in done.stderr


def test_chat_ends_at_end_of_input_also_on_an_ended_conversation(tmp_path: Path) -> None:
    """`printf 'hi\\n' | chatflow chat demo`: the line is answered and the chat ends (on Python
    3.11 it used to wait for ever on its status watcher)."""
    stack = start_dev(tmp_path / "data", tmp_path / "logs")

    def chat(text: str) -> list[str]:
        done = subprocess.run(
            chatflow_command("chat", "demo", "--url", stack.url, "--as", "+14155550142"),
            input=text,
            capture_output=True,
            text=True,
            env=chatflow_env(),
            timeout=45,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    try:
        assert "demo> Hi! I'm the chatflow demo bot." in chat("hi\n")
        assert "demo> Bye! Text us any time." in chat("bye\n")
        # A message after the end starts a new conversation; end of input right after it.
        again = chat("hello again\n")
        assert "-- conversation ended: completed; a message starts a new one" in again
        assert again.count("demo> Hi! I'm the chatflow demo bot.") == 2, again  # the old one's, the new one's
    finally:
        stack.stop()


def test_dev_stops_quietly_with_a_chat_open_and_the_chat_says_once_that_it_went(tmp_path: Path) -> None:
    """Ctrl-C on `chatflow dev` while the chat's long poll waits: the poll is answered (503
    "stopping"), nothing is logged as an error, and the chat says so in one line."""
    stack = start_dev(tmp_path / "data", tmp_path / "logs")
    chat = subprocess.Popen(
        chatflow_command("chat", "demo", "--url", stack.url),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=chatflow_env(),
    )
    assert chat.stdin is not None
    try:
        lines: list[str] = []
        _read_until(chat, "Chatting with flow demo", lines)
        chat.stdin.write("hi\n")
        chat.stdin.flush()
        _read_until(chat, "3. Talk to a person", lines)
        # The read that brought the menu is answered; the chat's next one waits its 20 s.
        time.sleep(1.5)
    finally:
        assert stack.stop() == 0
    _read_until(chat, f"-- chatflow at {stack.url} is not answering", lines)
    time.sleep(3)  # the chat keeps trying meanwhile
    out, err = chat.communicate("", timeout=60)
    assert chat.returncode == 0, err
    assert lines[-1] == f"-- chatflow at {stack.url} is not answering (stopping); waiting for it, Ctrl-D ends", (
        lines,
        stack.output()[-3000:],
    )
    assert out == ""  # said once, not at every try
    logged = stack.output()
    assert "Exception in ASGI application" not in logged
    assert "CancelledError" not in logged
    assert "Traceback" not in logged


def test_chat_refuses_an_app_that_is_not_chatflow(tmp_path: Path) -> None:
    port = free_port()
    other = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(url, timeout=2)
                break
            time.sleep(0.1)
        done = chat_once("demo", url)
    finally:
        other.terminate()
        other.wait(10)
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"error: the app at {url} is not chatflow (GET /console/numbers answered 404 File not found"
    ), done.stderr
    assert "start `chatflow dev` in the folder whose chatflow.toml lists flow 'demo'" in done.stderr


def test_the_console_pages_curl_snippet_shows_the_answer_to_its_own_message(tmp_path: Path) -> None:
    """The console page's curl lines, run as written against a `chatflow dev` (its URL put in):
    the answer to their "hi", not what the bot said to the same customer earlier."""
    from tests.test_docs import snippet as docs_snippet

    snippet = docs_snippet("console-curl")
    stack = start_dev(tmp_path / "data", tmp_path / "logs")
    try:
        stack.say("hi")  # an earlier conversation of the same customer, ended
        stack.wait_for("What can I do for you?")
        stack.say("bye")
        stack.wait_for("Bye! Text us any time.")
        done = subprocess.run(
            ["bash", "-c", "set -e\n" + snippet.replace("http://127.0.0.1:8000", stack.url)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        stack.stop()
    assert done.returncode == 0, done.stderr
    objects, text, at = [], done.stdout, 0  # the POST's answer, then the read's, with no newline between
    while at < len(text.rstrip()):
        value, at = json.JSONDecoder().raw_decode(text, at)
        objects.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    answer = objects[-1]
    texts = [message["text"] for message in answer["messages"]]
    assert texts[0] == "Hi! I'm the chatflow demo bot.", texts
    assert "Bye! Text us any time." not in texts
